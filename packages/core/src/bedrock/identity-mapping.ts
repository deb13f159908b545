/**
 * Who made a Bedrock call, from the invocation log's `identity.arn`, and how a team maps its IAM
 * principals onto tokenwatch users and apps.
 */

/** The caller's IAM principal, as far as its ARN tells. */
export interface PrincipalRef {
  arn: string;
  /** `aws`, `aws-us-gov`, `aws-cn`, … */
  partition: string;
  account: string | undefined;
  /** `user` (IAM user), `assumed-role` (STS session), `role`, `federated-user`, `root`, `other`. */
  kind: 'user' | 'assumed-role' | 'role' | 'federated-user' | 'root' | 'other';
  /** IAM user name, role name, or federated user name. */
  name: string | undefined;
  /** The session name of an assumed role. */
  session: string | undefined;
}

const IAM_ARN = /^arn:(aws[a-z-]*):(iam|sts)::(\d*):(.+)$/;

export function parsePrincipalArn(arn: string): PrincipalRef {
  const m = IAM_ARN.exec(arn);
  if (!m) {
    return {
      arn,
      partition: 'aws',
      account: undefined,
      kind: 'other',
      name: undefined,
      session: undefined,
    };
  }
  const partition = m[1] as string;
  const account = m[3] || undefined;
  const resource = m[4] as string;
  const base = { arn, partition, account };
  if (resource === 'root') return { ...base, kind: 'root', name: 'root', session: undefined };
  const slash = resource.indexOf('/');
  const type = slash < 0 ? resource : resource.slice(0, slash);
  const rest = slash < 0 ? '' : resource.slice(slash + 1);
  // IAM names may carry a path (`user/division/alice`): the name is the last segment.
  const last = (s: string) => s.slice(s.lastIndexOf('/') + 1) || undefined;
  switch (type) {
    case 'user':
      return { ...base, kind: 'user', name: last(rest), session: undefined };
    case 'role':
      return { ...base, kind: 'role', name: last(rest), session: undefined };
    case 'federated-user':
      return { ...base, kind: 'federated-user', name: last(rest), session: undefined };
    case 'assumed-role': {
      const cut = rest.indexOf('/');
      return {
        ...base,
        kind: 'assumed-role',
        name: cut < 0 ? rest || undefined : rest.slice(0, cut) || undefined,
        session: cut < 0 ? undefined : rest.slice(cut + 1) || undefined,
      };
    }
    default:
      return { ...base, kind: 'other', name: undefined, session: undefined };
  }
}

/** Which part of the principal names the user or the app when request metadata does not. */
export type IdentityPart = 'session-name' | 'role-name' | 'arn' | 'none';

export function identityPart(p: PrincipalRef, part: IdentityPart): string | undefined {
  switch (part) {
    case 'none':
      return undefined;
    case 'arn':
      return p.arn;
    case 'role-name':
      return p.name;
    case 'session-name':
      // An IAM user or federated user has no session: the user is the principal itself.
      return p.kind === 'assumed-role' ? p.session : p.name;
  }
}

/** One row of the IAM principal → app (and user) table. */
export interface PrincipalRule {
  /**
   * An ARN, or a pattern with `*` (any characters). A role ARN (`arn:aws:iam::123:role/Bot`)
   * also matches that role's sessions (`arn:aws:sts::123:assumed-role/Bot/…`).
   */
  arn: string;
  appId?: string | undefined;
  userId?: string | undefined;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/** A compiled principal table: the first matching row wins. */
export function compilePrincipalRules(
  rules: readonly PrincipalRule[],
): (p: PrincipalRef) => PrincipalRule | undefined {
  const compiled = rules.map((rule) => ({ rule, re: globToRegExp(rule.arn) }));
  return (p) => {
    // The same principal, also in its IAM role form, so a role's ARN matches its sessions.
    const forms = [p.arn];
    if (p.kind === 'assumed-role' && p.name && p.account !== undefined) {
      forms.push(`arn:${p.partition}:iam::${p.account}:role/${p.name}`);
    }
    for (const { rule, re } of compiled) {
      if (forms.some((f) => re.test(f))) return rule;
    }
    return undefined;
  };
}
