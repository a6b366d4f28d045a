// The naming rules of protos/mlgw/contract/v1/contract.proto, applied to the generated enums:
// an ErrorReason's wire string is its name without "ERROR_REASON_"; any other contract enum
// value's is its name without the enum's prefix, lower case, "_" -> "-".
import { ErrorReason, Priority, RequestMetadata, ResponseMetadata } from "./gen/mlgw/contract/v1/contract";

const REASON_PREFIX = "ERROR_REASON_";

/** The ErrorInfo reason string of `reason` ("INVALID_REQUEST"). */
export function reasonString(reason: ErrorReason): string {
  return ErrorReason[reason].slice(REASON_PREFIX.length);
}

/** ErrorInfo.reason -> the enum (ERROR_REASON_UNSPECIFIED when this client does not know it). */
export function parseReason(reason: string): ErrorReason {
  const value = (ErrorReason as unknown as Record<string, number | undefined>)[REASON_PREFIX + reason];
  return typeof value === "number" ? (value as ErrorReason) : ErrorReason.ERROR_REASON_UNSPECIFIED;
}

function wire(name: string, prefix: string): string {
  return name.slice(prefix.length).toLowerCase().replace(/_/g, "-");
}

/** A request metadata key ("cache-control"). */
export function requestKey(key: RequestMetadata): string {
  return wire(RequestMetadata[key], "REQUEST_METADATA_");
}

/** A response (trailing) metadata key ("mlgw-cache"). */
export function responseKey(key: ResponseMetadata): string {
  return wire(ResponseMetadata[key], "RESPONSE_METADATA_");
}

/** The "mlgw-priority" value of `priority` ("batch"). */
export function priorityValue(priority: Priority): string {
  return wire(Priority[priority], "PRIORITY_");
}
