package mlgw

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	contractv1 "mlgw.internal/go/gen/mlgw/contract/v1"
)

// The naming rules of protos/mlgw/contract/v1/contract.proto: an ErrorReason's wire string is
// its name without "ERROR_REASON_"; any other contract enum value's is its name without the
// enum's prefix, lower case, "_" -> "-". Nothing here spells a reason or a key by hand.

const reasonPrefix = "ERROR_REASON_"

// ReasonString is the google.rpc.ErrorInfo reason of r ("INVALID_REQUEST").
func ReasonString(r contractv1.ErrorReason) string {
	return strings.TrimPrefix(string(r.Descriptor().Values().ByNumber(r.Number()).Name()), reasonPrefix)
}

// ParseReason maps an ErrorInfo reason to the enum (ERROR_REASON_UNSPECIFIED when unknown).
func ParseReason(reason string) contractv1.ErrorReason {
	v, ok := contractv1.ErrorReason_value[reasonPrefix+reason]
	if !ok {
		return contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
	return contractv1.ErrorReason(v)
}

func wire(e protoreflect.Enum) string {
	prefix := enumPrefix(e.Descriptor())
	name := string(e.Descriptor().Values().ByNumber(e.Number()).Name())
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, prefix)), "_", "-")
}

func enumPrefix(d protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, c := range string(d.Name()) {
		if i > 0 && c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(c)
	}
	return strings.ToUpper(b.String()) + "_"
}

// RequestKey is the metadata key of k ("cache-control").
func RequestKey(k contractv1.RequestMetadata) string { return wire(k) }

// ResponseKey is the trailer key of k ("mlgw-cache").
func ResponseKey(k contractv1.ResponseMetadata) string { return wire(k) }

// PriorityValue is the "mlgw-priority" value of p ("batch").
func PriorityValue(p contractv1.Priority) string { return wire(p) }
