// The thin client's error conversion and contract helpers (node's test runner).
import assert from "node:assert/strict";
import { test } from "node:test";

import { Metadata, status } from "@grpc/grpc-js";

import { GatewayError, priorityValue, reasonString, requestKey, target } from "../src";
import { Any } from "../src/gen/google/protobuf/any";
import { BadRequest, ErrorInfo, QuotaFailure, RetryInfo } from "../src/gen/google/rpc/error_details";
import { Status } from "../src/gen/google/rpc/status";
import { ErrorReason, Priority, RequestMetadata } from "../src/gen/mlgw/contract/v1/contract";

function pack(name: string, bytes: Uint8Array): Any {
  return { typeUrl: `type.googleapis.com/google.rpc.${name}`, value: Buffer.from(bytes) };
}

function failure(details: Any[]): Error {
  const metadata = new Metadata();
  const encoded = Status.encode({ code: 8, message: "slow down", details }).finish();
  metadata.set("grpc-status-details-bin", Buffer.from(encoded));
  return Object.assign(new Error("8 RESOURCE_EXHAUSTED"), {
    code: status.RESOURCE_EXHAUSTED,
    details: "slow down",
    metadata,
  });
}

test("every detail becomes a field", () => {
  const error = GatewayError.from(
    failure([
      pack("ErrorInfo", ErrorInfo.encode({ reason: "RATE_LIMITED", domain: "mlgw.gateway", metadata: { limit: "x" } }).finish()),
      pack("RetryInfo", RetryInfo.encode({ retryDelay: { seconds: 1, nanos: 500_000_000 } }).finish()),
      pack("QuotaFailure", QuotaFailure.encode({ violations: [{ subject: "s", description: "d" }] }).finish()),
      pack("BadRequest", BadRequest.encode({ fieldViolations: [{ field: "f", description: "e" }] }).finish()),
    ]),
  );
  assert.ok(error instanceof GatewayError);
  assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
  assert.equal(error.reason, ErrorReason.ERROR_REASON_RATE_LIMITED);
  assert.deepEqual([error.domain, error.metadata], ["mlgw.gateway", { limit: "x" }]);
  assert.equal(error.retryDelayMs, 1500);
  assert.deepEqual(error.quotaViolations, [{ subject: "s", description: "d" }]);
  assert.deepEqual(error.fieldViolations, [{ field: "f", description: "e" }]);
});

test("an unknown reason keeps its text", () => {
  const error = GatewayError.from(failure([pack("ErrorInfo", ErrorInfo.encode({ reason: "SOMETHING_NEW" }).finish())]));
  assert.ok(error instanceof GatewayError);
  assert.equal(error.reason, ErrorReason.ERROR_REASON_UNSPECIFIED);
  assert.equal(error.reasonText, "SOMETHING_NEW");
  assert.equal(error.retryDelayMs, undefined);
});

test("contract wire strings and targets", () => {
  assert.equal(reasonString(ErrorReason.ERROR_REASON_INVALID_REQUEST), "INVALID_REQUEST");
  assert.equal(requestKey(RequestMetadata.REQUEST_METADATA_CACHE_CONTROL), "cache-control");
  assert.equal(priorityValue(Priority.PRIORITY_INTERACTIVE), "interactive");
  assert.equal(target(["10.0.0.1:1", "10.0.0.2:2"]), "ipv4:10.0.0.1:1,10.0.0.2:2");
  assert.equal(target("gateway:50051"), "gateway:50051");
});
