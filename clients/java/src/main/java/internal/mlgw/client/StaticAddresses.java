package internal.mlgw.client;

import io.grpc.Attributes;
import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.StatusOr;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * A fixed list of gateway addresses ("mlgw-static:///host1:port1,host2:port2"), each its own
 * subchannel, so round_robin spreads calls over all of them.
 */
final class StaticAddresses extends NameResolverProvider {
  static final String SCHEME = "mlgw-static";

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getProducedSocketAddressTypes() {
    return List.of(InetSocketAddress.class);
  }

  @Override
  public NameResolver newNameResolver(URI target, NameResolver.Args args) {
    if (!SCHEME.equals(target.getScheme())) {
      return null;
    }
    List<EquivalentAddressGroup> groups = new ArrayList<>();
    for (String address : target.getPath().substring(1).split(",")) {
      int colon = address.lastIndexOf(':');
      String host = address.substring(0, colon).replace("[", "").replace("]", "");
      int port = Integer.parseInt(address.substring(colon + 1));
      // Each address is verified (TLS) and named (:authority) as itself, not as the first.
      Attributes attributes =
          Attributes.newBuilder()
              .set(EquivalentAddressGroup.ATTR_AUTHORITY_OVERRIDE, address)
              .build();
      groups.add(new EquivalentAddressGroup(new InetSocketAddress(host, port), attributes));
    }
    return new NameResolver() {
      @Override
      public String getServiceAuthority() {
        return target.getPath().substring(1).split(",")[0];
      }

      @Override
      public void start(Listener2 listener) {
        listener.onResult2(
            ResolutionResult.newBuilder().setAddressesOrError(StatusOr.fromValue(groups)).build());
      }

      @Override
      public void shutdown() {}
    };
  }
}
