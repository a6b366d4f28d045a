// A Promise-based client over @grpc/grpc-js: one channel to one or several gateway addresses
// (round robin, retries of UNAVAILABLE for idempotent RPCs: the generated service config),
// TLS/mTLS, an API key and a default deadline; every RPC of a generated service definition as
// an async method, failures as GatewayError.
import { once } from "node:events";

import {
  type CallOptions,
  Client as GrpcClient,
  type ClientOptions,
  type ChannelCredentials,
  credentials,
  Metadata,
} from "@grpc/grpc-js";

import { serviceConfigJson } from "./gen/client_info";
import { type Operation, OperationsService } from "./gen/google/longrunning/operations";
import { Priority, RequestMetadata } from "./gen/mlgw/contract/v1/contract";
import { priorityValue, requestKey } from "./contract";
import { GatewayError } from "./errors";

/** TLS settings; `certChain` with `privateKey` is mTLS. PEM buffers. */
export interface TlsOptions {
  rootCerts?: Buffer;
  certChain?: Buffer;
  privateKey?: Buffer;
  /** The name to verify when dialling IP addresses. */
  serverName?: string;
}

export interface ConnectOptions {
  /** Without it the connection is plaintext (loopback and tests only). */
  tls?: TlsOptions;
  /** Sent as "authorization: Bearer <key>" on every call. */
  apiKey?: string;
  /** Deadline of calls without one of their own, in ms (default 10000; 0: none). */
  defaultTimeoutMs?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: ClientOptions;
}

/** Per-call options: a deadline and the contract's request metadata. */
export interface CallOpts {
  timeoutMs?: number;
  cacheControl?: string;
  priority?: Priority;
  requestId?: string;
  metadata?: Metadata;
}

interface MethodDefinition<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (value: Buffer) => Res;
}

/** How `waitOperation` polls: python-api-core's defaults (1 s, x1.5, at most 20 s, 900 s). */
export interface Polling {
  initialMs?: number;
  multiplier?: number;
  maximumMs?: number;
  timeoutMs?: number;
}

/** Requests of a client- or bidi-streaming call. */
export type Requests<Req> = Iterable<Req> | AsyncIterable<Req>;

/**
 * A generated service definition's RPCs: unary -> Promise; server stream -> AsyncIterable;
 * bidi stream -> requests in, AsyncIterable out; client stream -> requests in, Promise out.
 */
export type ServiceMethods<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, infer Res> & { requestStream: false; responseStream: false }
    ? (request: Req, options?: CallOpts) => Promise<Res>
    : D[K] extends MethodDefinition<infer Req, infer Res> & { requestStream: false }
      ? (request: Req, options?: CallOpts) => AsyncIterable<Res>
      : D[K] extends MethodDefinition<infer Req, infer Res> & { responseStream: true }
        ? (requests: Requests<Req>, options?: CallOpts) => AsyncIterable<Res>
        : D[K] extends MethodDefinition<infer Req, infer Res>
          ? (requests: Requests<Req>, options?: CallOpts) => Promise<Res>
          : never;
};

/** The gRPC target of one address (DNS: every resolved address is balanced) or several IPs. */
export function target(addresses: string | string[]): string {
  const list = typeof addresses === "string" ? [addresses] : addresses;
  if (list.length === 0) {
    throw new Error("no gateway address");
  }
  if (list.length === 1) {
    return list[0];
  }
  const v6 = list.every((a) => a.startsWith("["));
  return `${v6 ? "ipv6" : "ipv4"}:${list.join(",")}`;
}

export class Connection {
  private readonly client: GrpcClient;
  private readonly apiKey?: string;
  private readonly defaultTimeoutMs: number;

  constructor(addresses: string | string[], options: ConnectOptions = {}) {
    const tls = options.tls;
    const creds: ChannelCredentials = tls
      ? credentials.createSsl(tls.rootCerts ?? null, tls.privateKey ?? null, tls.certChain ?? null)
      : credentials.createInsecure();
    const channelOptions: ClientOptions = {
      "grpc.service_config": serviceConfigJson,
      ...(tls?.serverName ? { "grpc.ssl_target_name_override": tls.serverName } : {}),
      ...options.channelOptions,
    };
    this.client = new GrpcClient(target(addresses), creds, channelOptions);
    this.apiKey = options.apiKey;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
  }

  /** The RPCs of a generated service definition (e.g. PersonalizeRuntimeServiceService). */
  service<D extends Record<string, MethodDefinition<any, any>>>(definition: D): ServiceMethods<D> {
    const methods: Record<string, unknown> = {};
    for (const [name, method] of Object.entries(definition)) {
      methods[name] = (input: any, options?: CallOpts) => {
        if (method.requestStream) {
          return method.responseStream ? this.bidiStream(method, input, options) : this.clientStream(method, input, options);
        }
        return method.responseStream ? this.serverStream(method, input, options) : this.unary(method, input, options);
      };
    }
    return methods as ServiceMethods<D>;
  }

  close(): void {
    this.client.close();
  }

  /** google.longrunning.Operations, which the gateway serves for jobs. */
  get operations(): ServiceMethods<typeof OperationsService> {
    return this.service(OperationsService);
  }

  /**
   * Poll a job's operation until it is done: the operation (unpack `response` into the RPC's
   * response type), or a GatewayError for its `error`; an Error after `timeoutMs`.
   */
  async waitOperation(name: string, polling: Polling = {}): Promise<Operation> {
    const { initialMs = 1000, multiplier = 1.5, maximumMs = 20_000, timeoutMs = 900_000 } = polling;
    const operations = this.operations;
    const deadline = Date.now() + timeoutMs;
    for (let delay = initialMs; ; delay = Math.min(delay * multiplier, maximumMs)) {
      const operation = await operations.getOperation({ name });
      if (operation.done) {
        if (operation.error) {
          throw GatewayError.fromStatus(operation.error);
        }
        return operation;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`operation ${name} not done after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)));
    }
  }

  /** A call's metadata: the API key and the contract's per-call keys. */
  metadata(options: CallOpts = {}): Metadata {
    const md = options.metadata?.clone() ?? new Metadata();
    if (this.apiKey) {
      md.set(requestKey(RequestMetadata.REQUEST_METADATA_AUTHORIZATION), `Bearer ${this.apiKey}`);
    }
    if (options.cacheControl !== undefined) {
      md.set(requestKey(RequestMetadata.REQUEST_METADATA_CACHE_CONTROL), options.cacheControl);
    }
    if (options.priority !== undefined) {
      md.set(requestKey(RequestMetadata.REQUEST_METADATA_MLGW_PRIORITY), priorityValue(options.priority));
    }
    if (options.requestId !== undefined) {
      md.set(requestKey(RequestMetadata.REQUEST_METADATA_X_REQUEST_ID), options.requestId);
    }
    return md;
  }

  private callOptions(options: CallOpts = {}, streaming = false): CallOptions {
    const timeout = options.timeoutMs ?? (streaming ? 0 : this.defaultTimeoutMs);
    return timeout > 0 ? { deadline: Date.now() + timeout } : {};
  }

  private unary<Req, Res>(method: MethodDefinition<Req, Res>, request: Req, options?: CallOpts): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        this.metadata(options),
        this.callOptions(options),
        (error, response) => (error ? reject(GatewayError.from(error)) : resolve(response as Res)),
      );
    });
  }

  private async *bidiStream<Req, Res>(
    method: MethodDefinition<Req, Res>,
    requests: Requests<Req>,
    options?: CallOpts,
  ): AsyncIterable<Res> {
    const call = this.client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      this.metadata(options),
      this.callOptions(options, true),
    );
    void send(call, requests);
    try {
      for await (const response of call) {
        yield response as Res;
      }
    } catch (error) {
      throw GatewayError.from(error);
    }
  }

  private clientStream<Req, Res>(method: MethodDefinition<Req, Res>, requests: Requests<Req>, options?: CallOpts): Promise<Res> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeClientStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        this.metadata(options),
        this.callOptions(options),
        (error, response) => (error ? reject(GatewayError.from(error)) : resolve(response as Res)),
      );
      void send(call, requests);
    });
  }

  private async *serverStream<Req, Res>(
    method: MethodDefinition<Req, Res>,
    request: Req,
    options?: CallOpts,
  ): AsyncIterable<Res> {
    const call = this.client.makeServerStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      this.metadata(options),
      this.callOptions(options, true),
    );
    try {
      for await (const response of call) {
        yield response as Res;
      }
    } catch (error) {
      throw GatewayError.from(error);
    }
  }
}

/** Writes every request with back-pressure, then half-closes; a failing source cancels the call. */
async function send<Req>(
  call: { write(message: Req): boolean; end(): void; cancel(): void; once(event: string, listener: () => void): unknown },
  requests: Requests<Req>,
): Promise<void> {
  try {
    for await (const request of requests) {
      if (!call.write(request)) {
        await once(call as unknown as NodeJS.EventEmitter, "drain");
      }
    }
    call.end();
  } catch {
    call.cancel();
  }
}
