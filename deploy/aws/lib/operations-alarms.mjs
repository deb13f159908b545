import { aws_cloudwatch as cloudwatch, Duration } from 'aws-cdk-lib';

/** DynamoDB operations the functions call (see the IAM statements): each can be throttled. */
const TABLE_OPERATIONS = [
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'BatchGetItem',
  'BatchWriteItem',
];

/**
 * The alarms beyond "something failed": usage waiting too long in the queue, throttled
 * functions, a throttled table, and alert notifications SNS could not deliver. All go to the
 * operations topic (`alarmAction`), never to the usage-alert topic.
 */
export function addOperationsAlarms(
  scope,
  { queue, functions, table, alertTopic, alarmAction, queueAgeSeconds },
) {
  if (!Number.isInteger(queueAgeSeconds) || queueAgeSeconds < 60) {
    throw new Error(
      `queueAgeAlarmSeconds must be an integer ≥ 60, got ${JSON.stringify(queueAgeSeconds)}`,
    );
  }
  const atLeastOnce = {
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  };
  const fiveMinutes = { period: Duration.minutes(5), statistic: 'Sum' };
  const alarms = [
    new cloudwatch.Alarm(scope, 'QueueAgeAlarm', {
      alarmDescription: `tokenwatch: usage has waited more than ${queueAgeSeconds} s in the queue (ingest stalled or too slow)`,
      metric: queue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: queueAgeSeconds,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }),
    new cloudwatch.Alarm(scope, 'TableThrottlesAlarm', {
      alarmDescription:
        'tokenwatch: DynamoDB throttled requests of the table (writes are retried; sustained throttling delays usage and alerts)',
      metric: table.metricThrottledRequestsForOperations({
        operations: TABLE_OPERATIONS,
        period: Duration.minutes(5),
      }),
      ...atLeastOnce,
    }),
    new cloudwatch.Alarm(scope, 'AlertNotificationsFailedAlarm', {
      alarmDescription:
        'tokenwatch: SNS could not deliver usage alerts to a subscriber of the alert topic',
      metric: alertTopic.metricNumberOfNotificationsFailed(fiveMinutes),
      ...atLeastOnce,
    }),
  ];
  for (const [name, fn] of Object.entries(functions)) {
    alarms.push(
      new cloudwatch.Alarm(scope, `${name}ThrottlesAlarm`, {
        alarmDescription: `tokenwatch: the ${name.toLowerCase()} function was throttled (reserved or account concurrency reached)`,
        metric: fn.metricThrottles(fiveMinutes),
        ...atLeastOnce,
      }),
    );
  }
  for (const alarm of alarms) alarm.addAlarmAction(alarmAction);
  return alarms;
}
