// Package tiergate is a thin typed client for tiergate's TaskService.
//
// It wraps the generated tiergatev1 stubs with what every caller needs: a channel that
// balances round robin over every address of a dns:/// name, keepalive pings during calls,
// a retry policy that waits for the server's pushback, a default deadline on every call,
// and errors whose google.rpc details (ErrorInfo, BadRequest, RetryInfo) are decoded into
// an *Error.
//
//	client, err := tiergate.Dial("localhost:50051")
//	if err != nil { ... }
//	defer client.Close()
//	reply, err := client.Classify(ctx, &tiergatev1.ClassifyRequest{Text: "...", Labels: labels})
//	var terr *tiergate.Error
//	if errors.As(err, &terr) && terr.Code == codes.InvalidArgument { ... terr.Violations ... }
package tiergate
