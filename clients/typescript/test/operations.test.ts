// waitOperation against an in-process google.longrunning.Operations server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Server, ServerCredentials, status } from "@grpc/grpc-js";

import { Connection, GatewayError } from "../src";
import { ErrorInfo } from "../src/gen/google/rpc/error_details";
import { type Operation, OperationsService } from "../src/gen/google/longrunning/operations";
import { ErrorReason } from "../src/gen/mlgw/contract/v1/contract";

test("waitOperation polls until done", async () => {
  const polls = new Map<string, number>();
  const server = new Server();
  server.addService(OperationsService, {
    getOperation: (call: any, callback: any) => {
      const name: string = call.request.name;
      const n = (polls.get(name) ?? 0) + 1;
      polls.set(name, n);
      const operation: Operation = { name, done: n >= 3 && name !== "never" };
      if (operation.done && name === "ok") {
        operation.response = { typeUrl: "type.googleapis.com/x", value: Buffer.from("done") };
      } else if (operation.done) {
        const info = ErrorInfo.encode({ reason: "UPSTREAM_VALIDATION" }).finish();
        operation.error = {
          code: status.ABORTED,
          message: "the job failed",
          details: [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Buffer.from(info) }],
        };
      }
      callback(null, operation);
    },
  } as any);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const connection = new Connection(`127.0.0.1:${port}`);
  const fast = { initialMs: 10, maximumMs: 20 };
  try {
    const done = await connection.waitOperation("ok", fast);
    assert.equal(Buffer.from(done.response?.value ?? []).toString(), "done");
    assert.equal(polls.get("ok"), 3);
    await assert.rejects(connection.waitOperation("failed", fast), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.codeName, "ABORTED");
      assert.equal(error.reason, ErrorReason.ERROR_REASON_UPSTREAM_VALIDATION);
      return true;
    });
    await assert.rejects(connection.waitOperation("never", { ...fast, timeoutMs: 50 }), /not done/);
  } finally {
    connection.close();
    server.forceShutdown();
  }
});
