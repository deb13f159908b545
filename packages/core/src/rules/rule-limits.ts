/** Limits of a rule, exported so docs and tests quote one source. */
export const RULE_LIMITS = {
  nameMaxLength: 128,
  maxFilterValues: 100,
  filterValueMaxLength: 512,
  maxRollingMinutes: 10_080,
  maxLevels: 10,
  maxPercent: 1_000,
  maxChannels: 10,
  urlMaxLength: 2_048,
  secretMaxLength: 1_024,
  maxEmailRecipients: 20,
  emailMaxLength: 254,
} as const;
