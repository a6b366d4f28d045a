package internal.mlgw.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.longrunning.GetOperationRequest;
import com.google.longrunning.Operation;
import com.google.longrunning.OperationsGrpc;
import com.google.protobuf.Any;
import com.google.protobuf.StringValue;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Status;
import internal.mlgw.contract.v1.ErrorReason;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

class WaitOperationTest {
  /** Finishes "ok" and "failed" on their third poll; "never" never. */
  static final class Operations extends OperationsGrpc.OperationsImplBase {
    final Map<String, Integer> polls = new ConcurrentHashMap<>();

    @Override
    public void getOperation(GetOperationRequest request, StreamObserver<Operation> answer) {
      String name = request.getName();
      int n = polls.merge(name, 1, Integer::sum);
      Operation.Builder op = Operation.newBuilder().setName(name);
      if (n >= 3 && name.equals("ok")) {
        op.setDone(true).setResponse(Any.pack(StringValue.of("done")));
      } else if (n >= 3 && name.equals("failed")) {
        op.setDone(true)
            .setError(
                Status.newBuilder()
                    .setCode(Code.ABORTED_VALUE)
                    .setMessage("the job failed")
                    .addDetails(Any.pack(ErrorInfo.newBuilder().setReason("UPSTREAM_VALIDATION").build())));
      }
      answer.onNext(op.build());
      answer.onCompleted();
    }
  }

  @Test
  void pollsUntilDone() throws Exception {
    Operations fake = new Operations();
    Server server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(fake).build().start();
    Duration fast = Duration.ofMillis(10);
    try (MlgwClient client = MlgwClient.builder(List.of("127.0.0.1:" + server.getPort())).build()) {
      Operation done = client.waitOperation("ok", Duration.ofSeconds(10), fast, fast);
      assertEquals("done", done.getResponse().unpack(StringValue.class).getValue());
      assertEquals(3, fake.polls.get("ok"));
      GatewayException failed =
          assertThrows(GatewayException.class, () -> client.waitOperation("failed", Duration.ofSeconds(10), fast, fast));
      assertEquals(io.grpc.Status.Code.ABORTED, failed.code());
      assertEquals(ErrorReason.ERROR_REASON_UPSTREAM_VALIDATION, failed.reason());
      assertThrows(TimeoutException.class, () -> client.waitOperation("never", Duration.ofMillis(50), fast, fast));
    } finally {
      server.shutdownNow();
    }
  }
}
