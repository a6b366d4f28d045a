package internal.mlgw.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.Duration;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import internal.mlgw.contract.v1.ErrorReason;
import internal.mlgw.contract.v1.Priority;
import internal.mlgw.contract.v1.RequestMetadata;
import io.grpc.protobuf.StatusProto;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

class GatewayExceptionTest {
  private static RuntimeException failure(Any... details) {
    Status.Builder status = Status.newBuilder().setCode(Code.RESOURCE_EXHAUSTED_VALUE).setMessage("slow down");
    for (Any detail : details) {
      status.addDetails(detail);
    }
    return StatusProto.toStatusRuntimeException(status.build());
  }

  @Test
  void everyDetailBecomesAField() {
    RuntimeException error =
        failure(
            Any.pack(ErrorInfo.newBuilder().setReason("RATE_LIMITED").setDomain("mlgw.gateway").putMetadata("limit", "x").build()),
            Any.pack(RetryInfo.newBuilder().setRetryDelay(Duration.newBuilder().setSeconds(1).setNanos(500_000_000)).build()),
            Any.pack(QuotaFailure.newBuilder().addViolations(QuotaFailure.Violation.newBuilder().setSubject("s").setDescription("d")).build()),
            Any.pack(BadRequest.newBuilder().addFieldViolations(BadRequest.FieldViolation.newBuilder().setField("f").setDescription("e")).build()));
    // Also through a future's ExecutionException.
    GatewayException e = (GatewayException) GatewayException.from(new ExecutionException(error));
    assertEquals(io.grpc.Status.Code.RESOURCE_EXHAUSTED, e.code());
    assertEquals(ErrorReason.ERROR_REASON_RATE_LIMITED, e.reason());
    assertEquals("mlgw.gateway", e.domain());
    assertEquals(Map.of("limit", "x"), e.metadata());
    assertEquals(java.time.Duration.ofMillis(1500), e.retryDelay().orElseThrow());
    assertEquals(List.of(new GatewayException.QuotaViolation("s", "d")), e.quotaViolations());
    assertEquals(List.of(new GatewayException.FieldViolation("f", "e")), e.fieldViolations());
    assertSame(e, GatewayException.from(e));
  }

  @Test
  void anUnknownReasonKeepsItsText() {
    GatewayException e =
        (GatewayException) GatewayException.from(failure(Any.pack(ErrorInfo.newBuilder().setReason("SOMETHING_NEW").build())));
    assertEquals(ErrorReason.ERROR_REASON_UNSPECIFIED, e.reason());
    assertEquals("SOMETHING_NEW", e.reasonText());
    assertTrue(e.retryDelay().isEmpty());
  }

  @Test
  void contractWireStrings() {
    assertEquals("INVALID_REQUEST", Contract.reasonString(ErrorReason.ERROR_REASON_INVALID_REQUEST));
    assertEquals("x-request-id", Contract.requestKey(RequestMetadata.REQUEST_METADATA_X_REQUEST_ID));
    assertEquals("batch", Contract.priorityValue(Priority.PRIORITY_BATCH));
  }
}
