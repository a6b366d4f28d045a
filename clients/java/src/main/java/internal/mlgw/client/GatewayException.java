package internal.mlgw.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import internal.mlgw.contract.v1.ErrorReason;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A call the gateway failed, with its status details (AIP-193). */
public final class GatewayException extends RuntimeException {
  /** One invalid request field (google.rpc.BadRequest), by proto field path. */
  public record FieldViolation(String field, String description) {}

  /** One limit that turned the call away (google.rpc.QuotaFailure). */
  public record QuotaViolation(String subject, String description) {}

  private final Status.Code code;
  private ErrorReason reason = ErrorReason.ERROR_REASON_UNSPECIFIED;
  private String reasonText = "";
  private String domain = "";
  private Map<String, String> metadata = Map.of();
  private Duration retryDelay;
  private final List<FieldViolation> fieldViolations = new ArrayList<>();
  private final List<QuotaViolation> quotaViolations = new ArrayList<>();

  private GatewayException(Status status, Throwable cause) {
    super(status.getCode() + ": " + status.getDescription(), cause);
    this.code = status.getCode();
  }

  /**
   * The GatewayException of a failed call (a StatusRuntimeException or StatusException, also as
   * the cause of a future's ExecutionException); {@code error} itself when it is not one.
   */
  public static RuntimeException from(Throwable error) {
    Throwable cause = error;
    while (cause != null
        && !(cause instanceof StatusRuntimeException)
        && !(cause instanceof StatusException)
        && !(cause instanceof GatewayException)) {
      cause = cause.getCause();
    }
    if (cause instanceof GatewayException gateway) {
      return gateway;
    }
    if (cause == null) {
      return error instanceof RuntimeException runtime ? runtime : new RuntimeException(error);
    }
    GatewayException out = new GatewayException(Status.fromThrowable(cause), cause);
    com.google.rpc.Status details = StatusProto.fromThrowable(cause);
    if (details != null) {
      for (Any any : details.getDetailsList()) {
        out.read(any);
      }
    }
    return out;
  }

  /** The GatewayException of a google.rpc.Status, e.g. a failed operation's error. */
  public static GatewayException from(com.google.rpc.Status status) {
    Status grpcStatus = Status.fromCodeValue(status.getCode()).withDescription(status.getMessage());
    GatewayException out = new GatewayException(grpcStatus, null);
    for (Any any : status.getDetailsList()) {
      out.read(any);
    }
    return out;
  }

  private void read(Any any) {
    try {
      if (any.is(ErrorInfo.class)) {
        ErrorInfo info = any.unpack(ErrorInfo.class);
        reasonText = info.getReason();
        reason = Contract.parseReason(reasonText);
        domain = info.getDomain();
        metadata = info.getMetadataMap();
      } else if (any.is(RetryInfo.class)) {
        com.google.protobuf.Duration delay = any.unpack(RetryInfo.class).getRetryDelay();
        retryDelay = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
      } else if (any.is(BadRequest.class)) {
        for (BadRequest.FieldViolation v : any.unpack(BadRequest.class).getFieldViolationsList()) {
          fieldViolations.add(new FieldViolation(v.getField(), v.getDescription()));
        }
      } else if (any.is(QuotaFailure.class)) {
        for (QuotaFailure.Violation v : any.unpack(QuotaFailure.class).getViolationsList()) {
          quotaViolations.add(new QuotaViolation(v.getSubject(), v.getDescription()));
        }
      }
    } catch (InvalidProtocolBufferException malformed) {
      // A detail this client cannot read leaves the others usable.
    }
  }

  public Status.Code code() {
    return code;
  }

  /** ErrorInfo.reason as the contract enum (UNSPECIFIED for a reason newer than this client). */
  public ErrorReason reason() {
    return reason;
  }

  /** ErrorInfo.reason as sent. */
  public String reasonText() {
    return reasonText;
  }

  public String domain() {
    return domain;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /** RetryInfo's delay, when the gateway says waiting helps. */
  public Optional<Duration> retryDelay() {
    return Optional.ofNullable(retryDelay);
  }

  public List<FieldViolation> fieldViolations() {
    return List.copyOf(fieldViolations);
  }

  public List<QuotaViolation> quotaViolations() {
    return List.copyOf(quotaViolations);
  }
}
