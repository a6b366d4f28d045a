"""An async gRPC gateway in front of AWS's ML inference APIs."""

__version__ = "0.1.0"
