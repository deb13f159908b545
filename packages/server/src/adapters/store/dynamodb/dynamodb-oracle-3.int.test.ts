import { runDynamoDbOraclePart } from './testing/oracle-options.js';

/** Part 3 of the DynamoDB rule oracle's cases (see testing/oracle-options.ts). */
runDynamoDbOraclePart(2);
