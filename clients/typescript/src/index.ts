// The TypeScript client of the ML inference gateway (see clients/typescript/README.md).
export {
  Connection,
  target,
  type CallOpts,
  type ConnectOptions,
  type Polling,
  type Requests,
  type ServiceMethods,
  type TlsOptions,
} from "./client";
export { parseReason, priorityValue, reasonString, requestKey, responseKey } from "./contract";
export { GatewayError, type FieldViolation, type QuotaViolation } from "./errors";
export { version } from "./gen/client_info";
export * as contract from "./gen/mlgw/contract/v1/contract";
export * as personalizeRuntime from "./gen/mlgw/personalize_runtime/v1/personalize_runtime";
export * as personalize from "./gen/mlgw/personalize/v1/personalize";
export * as machinelearning from "./gen/mlgw/machinelearning/v1/machinelearning";
export * as bedrock from "./gen/mlgw/bedrock/v1/bedrock";
export * as batch from "./gen/mlgw/batch/v1/batch";
export * as jobs from "./gen/mlgw/jobs/v1/jobs";
export * as longrunning from "./gen/google/longrunning/operations";
