// Command example classifies a support ticket with tiergate and prints the label and its cost,
// or that the answer came from the response cache.
//
//	go run ./example              # TIERGATE_TARGET defaults to localhost:50051; TIERGATE_TOKEN
//	                              # is sent as the bearer token when set
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"google.golang.org/grpc/metadata"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
	"tiergate/clients/go/tiergate"
)

func main() {
	target := os.Getenv("TIERGATE_TARGET")
	if target == "" {
		target = "localhost:50051"
	}
	client, err := tiergate.Dial(target)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	if token := os.Getenv("TIERGATE_TOKEN"); token != "" { // a server with bearer tokens
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	reply, err := client.Classify(ctx, &tiergatev1.ClassifyRequest{
		Text:   "I was charged twice for my subscription this month.",
		Labels: []*tiergatev1.Label{{Name: "billing"}, {Name: "technical"}, {Name: "account"}},
	})
	var terr *tiergate.Error
	if errors.As(err, &terr) {
		for _, v := range terr.Violations {
			fmt.Fprintf(os.Stderr, "invalid %s: %s\n", v.Field, v.Description)
		}
		// terr.Error() names the code, and the reason when the service sent one; a retry delay
		// only when it suggested one.
		if terr.HasRetryInfo {
			log.Fatalf("%v; retry after %v", terr, terr.RetryAfter)
		}
		log.Fatal(terr)
	} else if err != nil {
		log.Fatal(err)
	}
	usage := reply.GetUsage()
	fmt.Printf("label %s\n", reply.GetLabel())
	if usage.GetFromCache() {
		// An identical request answered earlier: no model call, nothing charged.
		fmt.Printf("%s: answered from the response cache, no model call, %s\n", usage.GetModel(),
			tiergate.Dollars(usage.GetCost().GetTotalNanos()))
		return
	}
	fmt.Printf("%s: %d input, %d output tokens, %s\n", usage.GetModel(),
		usage.GetInputTokens(), usage.GetOutputTokens(), tiergate.Dollars(usage.GetCost().GetTotalNanos()))
}
