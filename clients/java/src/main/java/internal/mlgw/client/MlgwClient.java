package internal.mlgw.client;

import com.google.longrunning.GetOperationRequest;
import com.google.longrunning.Operation;
import com.google.longrunning.OperationsGrpc;
import internal.mlgw.batch.v1.BatchServiceGrpc;
import internal.mlgw.bedrock.v1.BedrockServiceGrpc;
import internal.mlgw.contract.v1.Priority;
import internal.mlgw.jobs.v1.JobsServiceGrpc;
import internal.mlgw.contract.v1.RequestMetadata;
import internal.mlgw.machinelearning.v1.MachineLearningServiceGrpc;
import internal.mlgw.personalize.v1.PersonalizeServiceGrpc;
import internal.mlgw.personalize_runtime.v1.PersonalizeRuntimeServiceGrpc;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.NameResolverRegistry;
import io.grpc.TlsChannelCredentials;
import io.grpc.internal.JsonParser;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * One connection to the gateway: one or several addresses (round robin, retries of UNAVAILABLE
 * for idempotent RPCs: the generated service config), TLS/mTLS, an API key and a default
 * deadline for unary calls. Stubs are grpc-java's generated blocking and future stubs.
 */
public final class MlgwClient implements AutoCloseable {
  /** The protos' version this client was generated from. */
  public static final String VERSION = ClientInfo.VERSION;

  static {
    NameResolverRegistry.getDefaultRegistry().register(new StaticAddresses());
  }

  private final ManagedChannel channel;
  private final Channel intercepted;

  private MlgwClient(ManagedChannel channel, ClientInterceptor defaults) {
    this.channel = channel;
    this.intercepted = ClientInterceptors.intercept(channel, defaults);
  }

  public static Builder builder(List<String> addresses) {
    return new Builder(addresses);
  }

  /** The connection with the API key and default deadline applied, for any generated stub. */
  public Channel channel() {
    return intercepted;
  }

  /** A stub of this connection: {@code client.stub(PersonalizeRuntimeServiceGrpc::newFutureStub)}. */
  public <S> S stub(Function<Channel, S> factory) {
    return factory.apply(intercepted);
  }

  public PersonalizeRuntimeServiceGrpc.PersonalizeRuntimeServiceBlockingStub personalizeRuntime() {
    return PersonalizeRuntimeServiceGrpc.newBlockingStub(intercepted);
  }

  public PersonalizeServiceGrpc.PersonalizeServiceBlockingStub personalize() {
    return PersonalizeServiceGrpc.newBlockingStub(intercepted);
  }

  public MachineLearningServiceGrpc.MachineLearningServiceBlockingStub machineLearning() {
    return MachineLearningServiceGrpc.newBlockingStub(intercepted);
  }

  public BedrockServiceGrpc.BedrockServiceBlockingStub bedrock() {
    return BedrockServiceGrpc.newBlockingStub(intercepted);
  }

  /** The batch RPCs (per-entry results in request order); the stream is on the async stub. */
  public BatchServiceGrpc.BatchServiceBlockingStub batch() {
    return BatchServiceGrpc.newBlockingStub(intercepted);
  }

  /** The batch service's async stub, for StreamRecommendations. */
  public BatchServiceGrpc.BatchServiceStub batchAsync() {
    return BatchServiceGrpc.newStub(intercepted);
  }

  /** Job submission: each submit returns a google.longrunning.Operation (see waitOperation). */
  public JobsServiceGrpc.JobsServiceBlockingStub jobs() {
    return JobsServiceGrpc.newBlockingStub(intercepted);
  }

  /** google.longrunning.Operations, which the gateway serves for jobs. */
  public OperationsGrpc.OperationsBlockingStub operations() {
    return OperationsGrpc.newBlockingStub(intercepted);
  }

  /**
   * Poll a job's operation until it is done (python-api-core's policy: 1 s, x1.5, at most 20 s):
   * the operation (unpack its response into the RPC's response type), or a {@link
   * GatewayException} for its error; a TimeoutException after {@code timeout}.
   */
  public Operation waitOperation(String name, Duration timeout)
      throws InterruptedException, TimeoutException {
    return waitOperation(name, timeout, Duration.ofSeconds(1), Duration.ofSeconds(20));
  }

  /** {@link #waitOperation(String, Duration)} with its own first and longest delay. */
  public Operation waitOperation(String name, Duration timeout, Duration first, Duration longest)
      throws InterruptedException, TimeoutException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (Duration delay = first; ; delay = min(delay.multipliedBy(3).dividedBy(2), longest)) {
      Operation operation =
          call(() -> operations().getOperation(GetOperationRequest.newBuilder().setName(name).build()));
      if (operation.getDone()) {
        if (operation.hasError()) {
          throw GatewayException.from(operation.getError());
        }
        return operation;
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new TimeoutException("operation " + name + " not done after " + timeout);
      }
      TimeUnit.NANOSECONDS.sleep(Math.min(delay.toNanos(), left));
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  /** Run a blocking call; a failure is thrown as {@link GatewayException}. */
  public static <T> T call(Supplier<T> call) {
    try {
      return call.get();
    } catch (RuntimeException error) {
      throw GatewayException.from(error);
    }
  }

  /** The stub with the contract's per-call metadata (null arguments are not sent). */
  public static <S extends AbstractStub<S>> S with(
      S stub, String cacheControl, Priority priority, String requestId) {
    Metadata md = new Metadata();
    put(md, RequestMetadata.REQUEST_METADATA_CACHE_CONTROL, cacheControl);
    put(md, RequestMetadata.REQUEST_METADATA_MLGW_PRIORITY,
        priority == null ? null : Contract.priorityValue(priority));
    put(md, RequestMetadata.REQUEST_METADATA_X_REQUEST_ID, requestId);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md));
  }

  private static void put(Metadata md, RequestMetadata key, String value) {
    if (value != null) {
      md.put(Metadata.Key.of(Contract.requestKey(key), Metadata.ASCII_STRING_MARSHALLER), value);
    }
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown().awaitTermination(5, TimeUnit.SECONDS);
  }

  /** Connection options. */
  public static final class Builder {
    private final List<String> addresses;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private String serverName;
    private String apiKey;
    private Duration defaultTimeout = Duration.ofSeconds(10);

    private Builder(List<String> addresses) {
      if (addresses.isEmpty()) {
        throw new IllegalArgumentException("no gateway address");
      }
      this.addresses = List.copyOf(addresses);
    }

    /** TLS with these roots (null: the system's); a chain and key make it mTLS. PEM files. */
    public Builder tls(File rootCerts, File certChain, File privateKey) {
      try {
        TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
        if (rootCerts != null) {
          tls.trustManager(rootCerts);
        }
        if (certChain != null && privateKey != null) {
          tls.keyManager(certChain, privateKey);
        }
        credentials = tls.build();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return this;
    }

    /** The name to verify in the gateway's certificate when dialling IP addresses. */
    public Builder serverName(String name) {
      serverName = name;
      return this;
    }

    /** Sent as "authorization: Bearer KEY" on every call. */
    public Builder apiKey(String key) {
      apiKey = key;
      return this;
    }

    /** The deadline of unary calls without one (Duration.ZERO: none). */
    public Builder defaultTimeout(Duration timeout) {
      defaultTimeout = timeout;
      return this;
    }

    @SuppressWarnings("unchecked")
    public MlgwClient build() {
      String target =
          addresses.size() == 1
              ? "dns:///" + addresses.get(0)
              : StaticAddresses.SCHEME + ":///" + String.join(",", addresses);
      ManagedChannelBuilder<?> builder = Grpc.newChannelBuilder(target, credentials);
      try {
        builder.defaultServiceConfig((Map<String, ?>) JsonParser.parse(ClientInfo.SERVICE_CONFIG));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      builder.enableRetry();
      if (serverName != null) {
        builder.overrideAuthority(serverName);
      }
      return new MlgwClient(builder.build(), new Defaults(apiKey, defaultTimeout));
    }
  }

  /** Adds the API key, and the default deadline to unary calls without one. */
  private static final class Defaults implements ClientInterceptor {
    private static final Metadata.Key<String> AUTHORIZATION =
        Metadata.Key.of(
            Contract.requestKey(RequestMetadata.REQUEST_METADATA_AUTHORIZATION),
            Metadata.ASCII_STRING_MARSHALLER);
    private final String apiKey;
    private final Duration timeout;

    Defaults(String apiKey, Duration timeout) {
      this.apiKey = apiKey;
      this.timeout = timeout;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(
        MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      if (options.getDeadline() == null
          && method.getType() == MethodDescriptor.MethodType.UNARY
          && !timeout.isZero()) {
        options = options.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
      }
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          if (apiKey != null && !apiKey.isEmpty()) {
            headers.put(AUTHORIZATION, "Bearer " + apiKey);
          }
          super.start(listener, headers);
        }
      };
    }
  }
}
