package internal.mlgw.client;

import internal.mlgw.contract.v1.ErrorReason;
import internal.mlgw.contract.v1.Priority;
import internal.mlgw.contract.v1.RequestMetadata;
import internal.mlgw.contract.v1.ResponseMetadata;
import java.util.Locale;

/**
 * The naming rules of protos/mlgw/contract/v1/contract.proto applied to the generated enums: an
 * ErrorReason's wire string is its name without "ERROR_REASON_"; any other contract enum value's
 * is its name without the enum's prefix, lower case, "_" replaced by "-".
 */
public final class Contract {
  private static final String REASON_PREFIX = "ERROR_REASON_";

  private Contract() {}

  /** The ErrorInfo reason of {@code reason} ("INVALID_REQUEST"). */
  public static String reasonString(ErrorReason reason) {
    return reason.name().substring(REASON_PREFIX.length());
  }

  /** ErrorInfo.reason to the enum (ERROR_REASON_UNSPECIFIED when this client does not know it). */
  public static ErrorReason parseReason(String reason) {
    try {
      return ErrorReason.valueOf(REASON_PREFIX + reason);
    } catch (IllegalArgumentException unknown) {
      return ErrorReason.ERROR_REASON_UNSPECIFIED;
    }
  }

  private static String wire(Enum<?> value, String prefix) {
    return value.name().substring(prefix.length()).toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** A request metadata key ("cache-control"). */
  public static String requestKey(RequestMetadata key) {
    return wire(key, "REQUEST_METADATA_");
  }

  /** A response (trailing) metadata key ("mlgw-cache"). */
  public static String responseKey(ResponseMetadata key) {
    return wire(key, "RESPONSE_METADATA_");
  }

  /** The "mlgw-priority" value of {@code priority} ("batch"). */
  public static String priorityValue(Priority priority) {
    return wire(priority, "PRIORITY_");
  }
}
