package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// DialOptions configures DialPublish and DialSubscribe. The zero value (or
// nil) works.
type DialOptions struct {
	// HTTPHeader is sent with the handshake: cookies, Authorization, Origin.
	HTTPHeader http.Header
	// HTTPClient makes the handshake request (default http.DefaultClient).
	HTTPClient *http.Client
	// MaxSegmentBytes is the largest segment a subscriber accepts
	// (default 8 MiB, the hub's default WithMaxSegmentBytes).
	MaxSegmentBytes int
}

func (o *DialOptions) websocket() *websocket.DialOptions {
	wo := &websocket.DialOptions{Subprotocols: []string{Subprotocol}}
	if o != nil {
		wo.HTTPHeader, wo.HTTPClient = o.HTTPHeader, o.HTTPClient
	}
	return wo
}

// dial connects and checks that the hub speaks protocol v1. A refused
// handshake returns a *HandshakeError with the hub's HTTP status and message.
func dial(ctx context.Context, url string, opts *DialOptions) (*websocket.Conn, error) {
	conn, resp, err := websocket.Dial(ctx, url, opts.websocket())
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, newHandshakeError(url, resp, err)
		}
		return nil, fmt.Errorf("relay: dial %s: %w", redactURL(url), err)
	}
	if conn.Subprotocol() != Subprotocol {
		conn.Close(websocket.StatusProtocolError, "want "+Subprotocol)
		return nil, fmt.Errorf("relay: dial %s: the server does not speak %s", redactURL(url), Subprotocol)
	}
	return conn, nil
}

// HandshakeError is returned by DialPublish and DialSubscribe when the hub
// answers the handshake with an HTTP error status (400, 401, 403, 404,
// 409, 429, 503: see Hub.ServeHTTP). errors.Is matches the package's error
// behind the status: ErrUnauthorized (401), ErrStreamBusy (409),
// ErrTooManyStreams or ErrTooManySubscribers (429), ErrHubClosed or
// ErrOverBudget (503).
type HandshakeError struct {
	// URL is the URL dialed; Error leaves out its query and user info.
	URL    string
	Status int
	// Body is the first line of the hub's answer (at most 1 KiB), which
	// says what was refused and why, e.g. "relay: stream already has a
	// publisher".
	Body  string
	known error // the package's error for Status and Body, if any
	err   error // the WebSocket library's
}

func newHandshakeError(url string, resp *http.Response, err error) *HandshakeError {
	e := &HandshakeError{URL: url, Status: resp.StatusCode, err: err}
	if resp.Body != nil {
		b, _ := io.ReadAll(resp.Body) // the first 1 KiB, buffered by websocket.Dial
		e.Body, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		e.Body = strings.TrimSpace(e.Body)
	}
	e.known = errorOfStatus(e.Status, e.Body)
	return e
}

func (e *HandshakeError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("relay: dial %s: refused with HTTP %d: %v", redactURL(e.URL), e.Status, e.err)
	}
	return fmt.Sprintf("relay: dial %s: refused with HTTP %d: %s", redactURL(e.URL), e.Status, e.Body)
}

// redactURL drops a URL's query and user info for error messages, which
// end up in logs: they may carry credentials (a browser cannot set headers
// on a WebSocket, so tokens often travel in the query).
func redactURL(rawURL string) string {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		s, _, _ := strings.Cut(rawURL, "?")
		return s
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// Unwrap returns the package's error for the status, if any, and the
// WebSocket library's error.
func (e *HandshakeError) Unwrap() []error {
	if e.known == nil {
		return []error{e.err}
	}
	return []error{e.known, e.err}
}

// PublishStart is what a publisher declares when it starts.
type PublishStart struct {
	// MIME is the stream's media type, e.g. "video/webm;codecs=vp8,opus".
	// Required in segments mode; in stream mode "" lets the hub read it
	// from the WebM.
	MIME string
	// Mode is ModeStream (the default: a WebM byte stream) or ModeSegments.
	Mode string
}

// A PublishClient publishes to a remote hub over protocol v1.
type PublishClient struct {
	conn        *websocket.Conn
	mode        string
	subscribers atomic.Int64
	readDone    chan struct{}
	readErr     error // why the read loop ended; valid after readDone
	mu          sync.Mutex
	hdr         []byte
}

// DialPublish connects to a hub's publish route, e.g.
// "ws://127.0.0.1:8080/live/room1/publish", and starts a session.
func DialPublish(ctx context.Context, url string, start PublishStart, opts *DialOptions) (*PublishClient, error) {
	if start.Mode == "" {
		start.Mode = ModeStream
	}
	conn, err := dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(message{Type: "start", MIME: start.MIME, Mode: start.Mode})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("relay: start: %w", err)
	}
	p := &PublishClient{conn: conn, mode: start.Mode, readDone: make(chan struct{})}
	p.subscribers.Store(-1)
	go p.read()
	return p, nil
}

// read takes the hub's messages to a publisher: stats, and the close frame.
func (p *PublishClient) read() {
	defer close(p.readDone)
	for {
		typ, b, err := p.conn.Read(context.Background())
		if err != nil {
			p.readErr = fromHub(err)
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		if m, err := parseMessage(b); err == nil && m.Type == "stats" && m.Subscribers != nil {
			p.subscribers.Store(int64(*m.Subscribers))
		}
	}
}

// Subscribers returns the subscriber count the hub last reported, or -1
// before its first report.
func (p *PublishClient) Subscribers() int { return int(p.subscribers.Load()) }

// Send sends WebM bytes (stream mode), cut anywhere.
func (p *PublishClient) Send(ctx context.Context, b []byte) error {
	if p.mode != ModeStream {
		return errors.New("relay: Send is for stream mode; use SendSegment")
	}
	return p.write(ctx, websocket.MessageBinary, b)
}

// SendSegment declares a segment and sends its bytes (segments mode).
// seg.Kind is KindInit or KindMedia; Keyframe marks where a decoder can
// start.
func (p *PublishClient) SendSegment(ctx context.Context, seg Segment) error {
	if p.mode != ModeSegments {
		return errors.New("relay: SendSegment is for segments mode; use Send")
	}
	if seg.Kind != KindInit && seg.Kind != KindMedia {
		return fmt.Errorf("relay: SendSegment: kind %s: want init or media", seg.Kind)
	}
	size := int64(len(seg.Data))
	b, _ := json.Marshal(message{Type: "segment", Size: &size, Keyframe: seg.Keyframe, Init: seg.Kind == KindInit})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writeLocked(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	return p.writeLocked(ctx, websocket.MessageBinary, seg.Data)
}

func (p *PublishClient) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeLocked(ctx, typ, b)
}

// writeLocked writes one message. When the hub closed the connection, the
// error is its *CloseError, which says why.
func (p *PublishClient) writeLocked(ctx context.Context, typ websocket.MessageType, b []byte) error {
	err := p.conn.Write(ctx, typ, b)
	if err == nil {
		return nil
	}
	select {
	case <-p.readDone:
		if websocket.CloseStatus(p.readErr) != -1 {
			return fmt.Errorf("relay: publish: %w", p.readErr)
		}
	default:
	}
	return fmt.Errorf("relay: publish: %w", err)
}

// Close ends the session cleanly: it sends "end" and waits (up to 10 s)
// until the hub, having handled everything sent before, closes the
// connection.
func (p *PublishClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultWriteTimeout)
	defer cancel()
	err := p.write(ctx, websocket.MessageText, []byte(`{"type":"end"}`))
	select {
	case <-p.readDone:
	case <-ctx.Done():
		p.conn.CloseNow()
		<-p.readDone
		return fmt.Errorf("relay: publish: the hub did not acknowledge the end: %w", ctx.Err())
	}
	if err != nil {
		return err
	}
	if code := websocket.CloseStatus(p.readErr); code != websocket.StatusNormalClosure {
		return fmt.Errorf("relay: publish: %w", p.readErr)
	}
	return nil
}

// Done is closed when the connection has ended.
func (p *PublishClient) Done() <-chan struct{} { return p.readDone }

// Err waits until the connection has ended and returns why: a *CloseError
// with the hub's close code and reason when the hub closed it (errors.Is
// tells which of the package's errors it is; ErrClosed after Close), else
// the error that ended it.
func (p *PublishClient) Err() error {
	<-p.readDone
	return p.readErr
}

// A SubscribeClient receives a stream from a remote hub over protocol v1.
// Next reads the connection; there is no goroutine behind it.
type SubscribeClient struct {
	conn *websocket.Conn
	done chan struct{} // closed when the connection has ended
	end  sync.Once
	err  error // why; valid once done is closed
}

// DialSubscribe connects to a hub's subscribe route, e.g.
// "ws://127.0.0.1:8080/live/room1/subscribe".
func DialSubscribe(ctx context.Context, url string, opts *DialOptions) (*SubscribeClient, error) {
	conn, err := dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	limit := defaultMaxSegmentBytes
	if opts != nil && opts.MaxSegmentBytes > 0 {
		limit = opts.MaxSegmentBytes
	}
	conn.SetReadLimit(int64(limit))
	return &SubscribeClient{conn: conn, done: make(chan struct{})}, nil
}

// Next returns the next segment: KindStart (with MIME), KindInit,
// KindMedia or KindEnd, as the hub sent them. Start and End have Seq 0:
// protocol v1 sends no seq with them (in process they carry the Seq of the
// segment before them). Once the connection has ended, Next returns Err's
// error; a ctx that expires while Next waits ends the connection too.
func (s *SubscribeClient) Next(ctx context.Context) (Segment, error) {
	select {
	case <-s.done:
		return Segment{}, s.err
	default:
	}
	seg, err := s.readSegment(ctx)
	if err != nil {
		s.ended(err)
		return Segment{}, s.err
	}
	return seg, nil
}

// ended records why the connection ended, the first time.
func (s *SubscribeClient) ended(err error) {
	s.end.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Done is closed when the connection has ended: when Next met its end (the
// hub's close frame reaches the Next that waits for a segment), or Close
// was called.
func (s *SubscribeClient) Done() <-chan struct{} { return s.done }

// Err waits until the connection has ended (see Done) and returns why: a
// *CloseError with the hub's close code and reason when the hub closed it
// (errors.Is tells which of the package's errors it is: ErrHubClosed,
// ErrTooSlow, ...), ErrClosed after Close, ErrProtocol when the hub broke
// the protocol, else the error that ended it.
func (s *SubscribeClient) Err() error {
	<-s.done
	return s.err
}

// readSegment reads the next segment: a control message, and the binary
// message of an init or media segment.
func (s *SubscribeClient) readSegment(ctx context.Context) (Segment, error) {
	for {
		typ, b, err := s.conn.Read(ctx)
		if err != nil {
			return Segment{}, fmt.Errorf("relay: subscribe: %w", fromHub(err))
		}
		if typ != websocket.MessageText {
			return Segment{}, s.fail("binary message without a header")
		}
		m, err := parseMessage(b)
		if err != nil {
			return Segment{}, s.fail(err.Error())
		}
		var seg Segment
		switch m.Type {
		case "start":
			return Segment{Kind: KindStart, MIME: m.MIME}, nil
		case "end":
			return Segment{Kind: KindEnd}, nil
		case "init":
			seg = Segment{Kind: KindInit, Seq: m.Seq}
		case "segment":
			seg = Segment{Kind: KindMedia, Seq: m.Seq, Keyframe: m.Keyframe, Discontinuity: m.Discontinuity}
		default:
			continue // room to grow: unknown types are ignored
		}
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return Segment{}, fmt.Errorf("relay: subscribe: %w", fromHub(err))
		}
		if typ != websocket.MessageBinary || m.Size == nil || int64(len(data)) != *m.Size {
			return Segment{}, s.fail(fmt.Sprintf("%s seq %d: want one binary message of the declared size, got %d bytes", m.Type, m.Seq, len(data)))
		}
		seg.Data = data
		return seg, nil
	}
}

// fail closes the connection after the hub broke the protocol.
func (s *SubscribeClient) fail(reason string) error {
	s.conn.Close(websocket.StatusProtocolError, clip(reason))
	return fmt.Errorf("relay: subscribe: %w by the hub: %s", ErrProtocol, reason)
}

// Close closes the connection.
func (s *SubscribeClient) Close() error {
	s.ended(fmt.Errorf("relay: subscribe: %w", ErrClosed))
	return s.conn.Close(websocket.StatusNormalClosure, "")
}
