// Package conformance runs the shared cases of clients/conformance/cases.json through the Go
// client against a live server (TIERGATE_TARGET) whose upstream is the emulator
// (TIERGATE_EMULATOR_URL). make clients-test starts both.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
	"tiergate/clients/go/tiergate"
)

type expectation struct {
	Code             string                    `json:"code"`
	Tier             string                    `json:"tier"`
	Fields           map[string]map[string]any `json:"fields"`
	Reason           string                    `json:"reason"`
	Violations       []string                  `json:"violations"`
	UpstreamRequests *int                      `json:"upstream_requests"`
	Batch            *batchExpectation         `json:"batch"`
	Stream           *streamExpectation        `json:"stream"`
}

type streamExpectation struct {
	MinMessages int `json:"min_messages"`
}

type batchExpectation struct {
	State   string   `json:"state"`
	Results []string `json:"results"`
}

type testCase struct {
	Name      string          `json:"name"`
	RPC       string          `json:"rpc"`
	Request   json.RawMessage `json:"request"`
	Faults    json.RawMessage `json:"faults"`
	TimeoutMS int             `json:"timeout_ms"`
	Expect    expectation     `json:"expect"`
}

// call parses the case's request into the RPC's request message (its type read from the
// service descriptor) and calls the client's method of the same name: no case per RPC. A
// streaming RPC's stream is read to its end (a streamed).
func call(ctx context.Context, c *tiergate.Client, rpc string, raw []byte) (any, error) {
	service := tiergatev1.File_tiergate_v1_task_service_proto.Services().ByName("TaskService")
	if strings.HasPrefix(rpc, "Stream") {
		service = tiergatev1.File_tiergate_v1_stream_service_proto.Services().ByName("StreamService")
	}
	desc := service.Methods().ByName(protoreflect.Name(rpc))
	method := reflect.ValueOf(c).MethodByName(rpc)
	if desc == nil || !method.IsValid() {
		return nil, fmt.Errorf("unknown rpc %q", rpc)
	}
	kind, err := protoregistry.GlobalTypes.FindMessageByName(desc.Input().FullName())
	if err != nil {
		return nil, err
	}
	req := kind.New().Interface()
	if err := protojson.Unmarshal(raw, req); err != nil {
		return nil, err
	}
	out := method.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	if desc.IsStreamingServer() {
		found := readStream(out[0])
		return found, found.err
	}
	reply, ok := out[0].Interface().(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%s returned %s, not a message", rpc, out[0].Type())
	}
	return reply, nil
}

// streamed is what a streaming call received: every message, then how it ended.
type streamed struct {
	messages []proto.Message
	err      error
}

// readStream reads a stream's messages (a Stream[T] from the client's method) until io.EOF or
// an error (rule 8).
func readStream(stream reflect.Value) streamed {
	var found streamed
	recv := stream.MethodByName("Recv")
	for {
		out := recv.Call(nil)
		if err, _ := out[1].Interface().(error); err != nil {
			if !errors.Is(err, io.EOF) {
				found.err = err
			}
			return found
		}
		found.messages = append(found.messages, out[0].Interface().(proto.Message))
	}
}

// checkStream checks rule 8's OK case and returns the last message's response.
func checkStream(t *testing.T, found streamed, expect expectation) proto.Message {
	t.Helper()
	if len(found.messages) < expect.Stream.MinMessages {
		t.Fatalf("%d messages, want at least %d", len(found.messages), expect.Stream.MinMessages)
	}
	var last proto.Message
	for i, message := range found.messages {
		fields := message.ProtoReflect()
		complete := fields.Get(fields.Descriptor().Fields().ByName("complete")).Bool()
		response := fields.Get(fields.Descriptor().Fields().ByName("response")).Message()
		hasUsage := response.Has(response.Descriptor().Fields().ByName("usage"))
		final := i == len(found.messages)-1
		if complete != final || (hasUsage && !final) {
			t.Fatalf("message %d: complete=%v usage=%v, want both only on the last", i, complete, hasUsage)
		}
		last = response.Interface()
	}
	return last
}

type emulator string

func (e emulator) post(t *testing.T, route string, body []byte) {
	t.Helper()
	resp, err := http.Post(string(e)+route, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d", route, resp.StatusCode)
	}
}

func (e emulator) requests(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(string(e) + "/_emulator/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Requests []json.RawMessage `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return len(body.Requests)
}

// at returns the value at a dotted path; a number indexes a list.
func at(doc any, path string) (any, error) {
	for _, part := range strings.Split(path, ".") {
		switch node := doc.(type) {
		case map[string]any:
			value, ok := node[part]
			if !ok {
				return nil, fmt.Errorf("%s: no %q", path, part)
			}
			doc = value
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i >= len(node) {
				return nil, fmt.Errorf("%s: no item %q", path, part)
			}
			doc = node[i]
		default:
			return nil, fmt.Errorf("%s: %q of a scalar", path, part)
		}
	}
	return doc, nil
}

func number(value any) (float64, error) {
	switch v := value.(type) {
	case float64:
		return v, nil
	case string: // int64 fields are strings in proto3 JSON
		return strconv.ParseFloat(v, 64)
	}
	return 0, fmt.Errorf("%v is not a number", value)
}

func checkField(value any, check map[string]any) error {
	if want, ok := check["equals"]; ok && !reflect.DeepEqual(value, want) {
		return fmt.Errorf("%v != %v", value, want)
	}
	if options, ok := check["one_of"].([]any); ok {
		found := false
		for _, option := range options {
			found = found || reflect.DeepEqual(value, option)
		}
		if !found {
			return fmt.Errorf("%v not one of %v", value, options)
		}
	}
	if nonEmpty, _ := check["non_empty"].(bool); nonEmpty {
		switch v := value.(type) {
		case string:
			if v == "" {
				return errors.New("empty string")
			}
		case []any:
			if len(v) == 0 {
				return errors.New("empty list")
			}
		case map[string]any:
			if len(v) == 0 {
				return errors.New("empty object")
			}
		default:
			return fmt.Errorf("%v is not a string, list or object", value)
		}
	}
	if bounds, ok := check["between"].([]any); ok {
		n, err := number(value)
		if err != nil {
			return err
		}
		if n < bounds[0].(float64) || n > bounds[1].(float64) {
			return fmt.Errorf("%v not in %v", n, bounds)
		}
	}
	return nil
}

func checkSuccess(t *testing.T, reply proto.Message, expect expectation) {
	t.Helper()
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	usage := doc["usage"].(map[string]any)
	cost := usage["cost"].(map[string]any)
	if usage["tier"] != expect.Tier || usage["model"] == "" {
		t.Errorf("usage tier/model = %v/%v, want tier %s", usage["tier"], usage["model"], expect.Tier)
	}
	for _, field := range []string{"input_tokens", "output_tokens"} {
		if n, _ := number(usage[field]); n <= 0 {
			t.Errorf("usage.%s = %v, want > 0", field, usage[field])
		}
	}
	total, _ := number(cost["total_nanos"])
	sum := 0.0
	for _, part := range []string{"input_nanos", "cache_write_nanos", "cache_read_nanos", "output_nanos"} {
		n, _ := number(cost[part])
		sum += n
	}
	if total <= 0 || total != sum {
		t.Errorf("cost.total_nanos = %v, parts sum to %v", total, sum)
	}
	for path, check := range expect.Fields {
		value, err := at(doc, path)
		if err == nil {
			err = checkField(value, check)
		}
		if err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func checkFailure(t *testing.T, err error, expect expectation) {
	t.Helper()
	var terr *tiergate.Error
	if !errors.As(err, &terr) {
		t.Fatalf("error %v is not a *tiergate.Error", err)
	}
	if terr.Code.String() != codeName(expect.Code) {
		t.Errorf("code = %v, want %s (%v)", terr.Code, expect.Code, terr)
	}
	if expect.Reason != "" && (terr.Reason != expect.Reason || terr.Domain != tiergate.Domain) {
		t.Errorf("ErrorInfo = %q/%q, want %q/%q", terr.Reason, terr.Domain, expect.Reason, tiergate.Domain)
	}
	if expect.Violations != nil {
		fields := []string{}
		for _, v := range terr.Violations {
			fields = append(fields, v.Field)
		}
		sort.Strings(fields)
		if !reflect.DeepEqual(fields, expect.Violations) {
			t.Errorf("violations = %v, want %v", fields, expect.Violations)
		}
	}
}

// codeName turns INVALID_ARGUMENT into Go's spelling, InvalidArgument.
func codeName(upper string) string {
	var b strings.Builder
	for _, word := range strings.Split(strings.ToLower(upper), "_") {
		b.WriteString(strings.ToUpper(word[:1]) + word[1:])
	}
	return b.String()
}

func TestConformance(t *testing.T) {
	target, url := os.Getenv("TIERGATE_TARGET"), os.Getenv("TIERGATE_EMULATOR_URL")
	if target == "" || url == "" {
		t.Skip("TIERGATE_TARGET and TIERGATE_EMULATOR_URL are not set: run with make clients-test")
	}
	raw, err := os.ReadFile("../../conformance/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []testCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	client, err := tiergate.Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	upstream := emulator(strings.TrimRight(url, "/"))
	for _, tc := range file.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.Faults != nil {
				upstream.post(t, "/_emulator/reset", []byte("{}"))
				upstream.post(t, "/_emulator/faults", tc.Faults)
			}
			ctx := context.Background()
			if tc.TimeoutMS > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(tc.TimeoutMS)*time.Millisecond)
				defer cancel()
			}
			if tc.RPC == "Batch" {
				runBatch(ctx, t, client, tc)
				if tc.Expect.UpstreamRequests != nil {
					if n := upstream.requests(t); n != *tc.Expect.UpstreamRequests {
						t.Errorf("upstream requests = %d, want %d", n, *tc.Expect.UpstreamRequests)
					}
				}
				return
			}
			reply, err := call(ctx, client, tc.RPC, tc.Request)
			if tc.Expect.Code == "OK" {
				if err != nil {
					t.Fatalf("call failed: %v", err)
				}
				message, ok := reply.(proto.Message)
				if found, streaming := reply.(streamed); streaming {
					message, ok = checkStream(t, found, tc.Expect), true
				}
				if !ok {
					t.Fatalf("the call returned %T", reply)
				}
				checkSuccess(t, message, tc.Expect)
			} else {
				if err == nil {
					t.Fatalf("call succeeded, want %s", tc.Expect.Code)
				}
				checkFailure(t, err, tc.Expect)
			}
			if tc.Expect.UpstreamRequests != nil {
				if n := upstream.requests(t); n != *tc.Expect.UpstreamRequests {
					t.Errorf("upstream requests = %d, want %d", n, *tc.Expect.UpstreamRequests)
				}
			}
		})
	}
}

// runBatch creates the case's batch, waits until it ended and checks its results (rule 7).
func runBatch(ctx context.Context, t *testing.T, client *tiergate.Client, tc testCase) {
	t.Helper()
	req := &tiergatev1.CreateBatchRequest{}
	if err := protojson.Unmarshal(tc.Request, req); err != nil {
		t.Fatal(err)
	}
	batch, err := client.CreateBatch(ctx, req.GetItems())
	if tc.Expect.Code != "OK" {
		if err == nil {
			t.Fatalf("CreateBatch succeeded, want %s", tc.Expect.Code)
		}
		checkFailure(t, err, tc.Expect)
		return
	}
	if err != nil {
		t.Fatalf("CreateBatch failed: %v", err)
	}
	giveUp := time.Now().Add(30 * time.Second)
	for !tiergate.BatchEnded(batch) {
		if time.Now().After(giveUp) {
			t.Fatal("the batch never ended")
		}
		time.Sleep(50 * time.Millisecond)
		if batch, err = client.GetBatch(ctx, batch.GetName()); err != nil {
			t.Fatal(err)
		}
	}
	if got := batch.GetState().String(); got != tc.Expect.Batch.State {
		t.Errorf("state = %s, want %s", got, tc.Expect.Batch.State)
	}
	results, err := client.BatchResults(ctx, batch.GetName())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	var total int64
	for _, result := range results {
		ids = append(ids, result.GetCustomId())
		if result.GetError() != nil {
			t.Errorf("%s: error %v", result.GetCustomId(), result.GetError())
			continue
		}
		usage := result.GetUsage()
		if usage.GetServiceTier() != "batch" || usage.GetCost().GetTotalNanos() <= 0 {
			t.Errorf("%s: usage %v", result.GetCustomId(), usage)
		}
		total += usage.GetCost().GetTotalNanos()
	}
	if !reflect.DeepEqual(ids, tc.Expect.Batch.Results) {
		t.Errorf("results = %v, want %v", ids, tc.Expect.Batch.Results)
	}
	if batch.GetUsage().GetCost().GetTotalNanos() != total {
		t.Errorf("batch cost = %d, items sum to %d", batch.GetUsage().GetCost().GetTotalNanos(), total)
	}
}
