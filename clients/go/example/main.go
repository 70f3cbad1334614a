// Command example classifies a support ticket with tiergate and prints the label and its cost.
//
//	go run ./example              # TIERGATE_TARGET defaults to localhost:50051
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

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

	reply, err := client.Classify(context.Background(), &tiergatev1.ClassifyRequest{
		Text:   "I was charged twice for my subscription this month.",
		Labels: []*tiergatev1.Label{{Name: "billing"}, {Name: "technical"}, {Name: "account"}},
	})
	var terr *tiergate.Error
	if errors.As(err, &terr) {
		for _, v := range terr.Violations {
			fmt.Fprintf(os.Stderr, "invalid %s: %s\n", v.Field, v.Description)
		}
		log.Fatalf("%s (reason %s, retry after %v)", terr.Code, terr.Reason, terr.RetryAfter)
	} else if err != nil {
		log.Fatal(err)
	}
	usage := reply.GetUsage()
	fmt.Printf("label %s (confidence %.2f)\n", reply.GetLabel(), reply.GetConfidence())
	fmt.Printf("%s: %d input, %d output tokens, $%.6f\n", usage.GetModel(),
		usage.GetInputTokens(), usage.GetOutputTokens(), float64(usage.GetCost().GetTotalNanos())/1e9)
}
