package tiergate

import (
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DefaultTimeout is the deadline of a call whose context has none: the service retries
// upstream only within the caller's deadline, so every call needs one.
const DefaultTimeout = 30 * time.Second

// ServiceConfig balances round robin over every resolved address (one per replica behind a
// headless Kubernetes service) and retries UNAVAILABLE and RESOURCE_EXHAUSTED. The service
// sends grpc-retry-pushback-ms with every error: the delay when a retry may help and nothing
// was billed (gRPC's retries then wait exactly that long instead of their own backoff), else
// -1, which stops them, so retries never multiply billed calls. The Python and TypeScript
// clients use the same.
const ServiceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "tiergate.v1.TaskService"}, {"service": "tiergate.v1.StreamService"}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.2s",
      "maxBackoff": "5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
    }
  }]
}`

// Keepalive pings during calls so a dead connection fails the call instead of hanging until
// its deadline; the server accepts a ping every 20 s.
var Keepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}

// Option changes how Dial connects.
type Option func(*settings)

type settings struct {
	timeout     time.Duration
	credentials credentials.TransportCredentials
	extra       []grpc.DialOption
}

// WithTimeout sets the deadline of calls whose context has none (default DefaultTimeout).
func WithTimeout(timeout time.Duration) Option {
	return func(s *settings) { s.timeout = timeout }
}

// WithTransportCredentials dials with TLS credentials instead of plaintext.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(s *settings) { s.credentials = creds }
}

// WithDialOptions appends gRPC dial options, e.g. per-RPC credentials or interceptors.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.extra = append(s.extra, opts...) }
}

// DialTarget returns target with the dns:/// scheme when it names no resolver, so
// round_robin sees every address of the name.
func DialTarget(target string) string {
	for _, scheme := range []string{"dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "xds:", "passthrough:"} {
		if strings.HasPrefix(target, scheme) {
			return target
		}
	}
	return "dns:///" + target
}

// Dial creates a client for the server at target (host:port or a gRPC target URI). It does
// not wait for a connection: the first call connects.
func Dial(target string, opts ...Option) (*Client, error) {
	s := settings{timeout: DefaultTimeout, credentials: insecure.NewCredentials()}
	for _, opt := range opts {
		opt(&s)
	}
	dialOpts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(s.credentials),
		grpc.WithDefaultServiceConfig(ServiceConfig),
		grpc.WithKeepaliveParams(Keepalive),
	}, s.extra...)
	conn, err := grpc.NewClient(DialTarget(target), dialOpts...)
	if err != nil {
		return nil, err
	}
	return NewClient(conn, s.timeout), nil
}
