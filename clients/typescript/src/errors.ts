import { type Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";

import { BadRequest, ErrorInfo, QuotaFailure, RetryInfo } from "./gen/google/rpc/error_details";
import { Status as RpcStatus } from "./gen/google/rpc/status";
import { ErrorReason, ResponseMetadata } from "./gen/mlgw/contract/v1/contract";
import { parseReason, responseKey } from "./contract";

/** One invalid request field (google.rpc.BadRequest), by proto field path. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** One limit that turned the call away (google.rpc.QuotaFailure). */
export interface QuotaViolation {
  subject: string;
  description: string;
}

const DETAILS_KEY = responseKey(ResponseMetadata.RESPONSE_METADATA_GRPC_STATUS_DETAILS_BIN);
const TYPE_PREFIX = "type.googleapis.com/google.rpc.";

/** A call the gateway failed, with its status details (AIP-193). */
export class GatewayError extends Error {
  /** The canonical gRPC code (grpc-js `status`). */
  readonly code: Status;
  /** ErrorInfo.reason as the contract enum; `reasonText` keeps the string. */
  reason: ErrorReason = ErrorReason.ERROR_REASON_UNSPECIFIED;
  reasonText = "";
  domain = "";
  metadata: Record<string, string> = {};
  /** RetryInfo's delay in milliseconds, when the gateway says waiting helps. */
  retryDelayMs: number | undefined;
  fieldViolations: FieldViolation[] = [];
  quotaViolations: QuotaViolation[] = [];

  constructor(code: Status, message: string) {
    super(message);
    this.name = "GatewayError";
    this.code = code;
  }

  /** The code's canonical name ("INVALID_ARGUMENT"). */
  get codeName(): string {
    return Status[this.code];
  }

  /** Wrap a grpc-js error (anything else is returned unchanged). */
  static from(error: unknown): unknown {
    if (error instanceof GatewayError || !isServiceError(error)) {
      return error;
    }
    const out = new GatewayError(error.code, error.details);
    for (const value of (error.metadata as Metadata | undefined)?.get(DETAILS_KEY) ?? []) {
      if (Buffer.isBuffer(value)) {
        out.read(RpcStatus.decode(value));
      }
    }
    return out;
  }

  /** The GatewayError of a google.rpc.Status, e.g. a failed operation's `error`. */
  static fromStatus(status: RpcStatus): GatewayError {
    const out = new GatewayError((status.code ?? Status.UNKNOWN) as Status, status.message ?? "");
    out.read(status);
    return out;
  }

  private read(status: RpcStatus): void {
    for (const any of status.details ?? []) {
      const value = any.value ?? new Uint8Array();
      switch (any.typeUrl) {
        case TYPE_PREFIX + "ErrorInfo": {
          const info = ErrorInfo.decode(value);
          this.reasonText = info.reason ?? "";
          this.reason = parseReason(this.reasonText);
          this.domain = info.domain ?? "";
          this.metadata = info.metadata ?? {};
          break;
        }
        case TYPE_PREFIX + "RetryInfo": {
          const delay = RetryInfo.decode(value).retryDelay;
          this.retryDelayMs = Number(delay?.seconds ?? 0) * 1000 + (delay?.nanos ?? 0) / 1e6;
          break;
        }
        case TYPE_PREFIX + "BadRequest":
          this.fieldViolations = (BadRequest.decode(value).fieldViolations ?? []).map((v) => ({
            field: v.field ?? "",
            description: v.description ?? "",
          }));
          break;
        case TYPE_PREFIX + "QuotaFailure":
          this.quotaViolations = (QuotaFailure.decode(value).violations ?? []).map((v) => ({
            subject: v.subject ?? "",
            description: v.description ?? "",
          }));
          break;
      }
    }
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}
