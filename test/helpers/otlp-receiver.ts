// A minimal OTLP/HTTP trace receiver for tests: POST /v1/traces with a protobuf ExportTraceServiceRequest,
// decoded with the official OpenTelemetry protobuf definitions (test/fixtures/otlp-proto, loaded by
// @grpc/proto-loader), answered 200 with an empty ExportTraceServiceResponse as a collector does. Spans
// come out flattened: hex ids, attributes as a plain object, the resource's attributes beside them.
// Run as a script (`node otlp-receiver.js HOST PORT`) it prints one JSON line per span on stdout: the
// sandbox e2e runs it inside the sandbox, where the agents can reach it.
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { repoRoot } from './paths.js';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** SPAN_KIND_CLIENT, SPAN_KIND_SERVER, ... */
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  /** STATUS_CODE_UNSET | STATUS_CODE_OK | STATUS_CODE_ERROR */
  status: string;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  scope: string;
}

interface KeyValue {
  key: string;
  value?: Record<string, unknown> & { value?: string };
}

const PROTO_DIR = join(repoRoot, 'test', 'fixtures', 'otlp-proto');

type Deserialize = (b: Buffer) => { resourceSpans: Array<{ resource?: { attributes: KeyValue[] }; scopeSpans: Array<{ scope?: { name: string }; spans: Array<Record<string, unknown>> }> }> };

function decoder(): Deserialize {
  const def = protoLoader.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { includeDirs: [PROTO_DIR], longs: String, enums: String, defaults: true, oneofs: true, keepCase: false });
  const svc = def['opentelemetry.proto.collector.trace.v1.TraceService'] as unknown as { Export: { requestDeserialize: Deserialize } };
  return svc.Export.requestDeserialize;
}

/** AnyValue → a JS value (the oneof's case names the field that holds it). */
function anyValue(v: KeyValue['value']): unknown {
  if (!v?.value) return undefined;
  const x = v[v.value];
  if (v.value === 'intValue') return Number(x);
  return x;
}

function attrs(list: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

const hex = (b: unknown) => (Buffer.isBuffer(b) ? b.toString('hex') : '');

export function decodeSpans(body: Buffer, decode: Deserialize = decoder()): ReceivedSpan[] {
  const req = decode(body);
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: String(s.name),
          kind: String(s.kind),
          startTimeUnixNano: String(s.startTimeUnixNano),
          endTimeUnixNano: String(s.endTimeUnixNano),
          status: String((s.status as { code?: string } | undefined)?.code ?? 'STATUS_CODE_UNSET'),
          attributes: attrs(s.attributes as KeyValue[]),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** requests received, with their content-type */
  requests: Array<{ path: string; contentType: string }>;
  /** answer the next `n` exports with this status (a collector refusing or overloaded) */
  failNext(n: number, status: number): void;
  close(): Promise<void>;
}

export function startOtlpReceiver(host = '127.0.0.1', port = 0, onSpan?: (s: ReceivedSpan) => void): Promise<OtlpReceiver> {
  const decode = decoder();
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver['requests'] = [];
  let failing = 0;
  let failStatus = 503;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', contentType: String(req.headers['content-type'] ?? '') });
      if (failing > 0) {
        failing--;
        res.writeHead(failStatus).end();
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      try {
        for (const s of decodeSpans(Buffer.concat(chunks), decode)) {
          spans.push(s);
          onSpan?.(s);
        }
      } catch (err) {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
      }
      // an empty ExportTraceServiceResponse is zero bytes of protobuf
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address() as import('node:net').AddressInfo;
      resolve({
        url: `http://${host}:${a.port}/v1/traces`,
        spans,
        requests,
        failNext(n, status) {
          failing = n;
          failStatus = status;
        },
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

// as a script: print every span as a JSON line (the sandbox e2e reads them)
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [host, port] = process.argv.slice(2);
  const r = await startOtlpReceiver(host, Number(port), (s) => process.stdout.write(JSON.stringify(s) + '\n'));
  process.stderr.write(`otlp receiver on ${r.url}\n`);
  // the test holds our stdin: when it goes (also when it dies), so do we
  process.stdin.on('end', () => process.exit(0)).resume();
}
