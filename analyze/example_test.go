package analyze_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/rewind-tools/rewind/analyze"
	"github.com/rewind-tools/rewind/capture"
)

// statusCount is a custom output: a Sink gets the capture's description,
// then every exchange as it completes, then the replay's summary. An
// exchange is valid only during the call (its buffers are reused), so a
// sink copies what it keeps.
type statusCount struct {
	byStatus map[int]int
}

func (s *statusCount) Begin(info *analyze.CaptureInfo) error {
	s.byStatus = map[int]int{}
	return nil
}

func (s *statusCount) Exchange(ex *analyze.Exchange) error {
	if ex.Conn.Role == capture.RoleServer { // the client side sees the same exchanges
		s.byStatus[ex.Response.Status]++
	}
	return nil
}

func (s *statusCount) End(sum *analyze.Summary) error {
	statuses := make([]int, 0, len(s.byStatus))
	for st := range s.byStatus {
		statuses = append(statuses, st)
	}
	slices.Sort(statuses)
	for _, st := range statuses {
		fmt.Printf("%d: %d\n", st, s.byStatus[st])
	}
	return nil
}

// ExampleReplay replays a capture into a sink of one's own: here, a count
// of the server side's answers by status. Any number of sinks can share
// one replay; each sees the same exchanges in the same order.
func ExampleReplay() {
	f, err := os.Open("../cmd/rewind/sample.rwd")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	in, err := analyze.OpenReader(f, "sample.rwd")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	if _, err := analyze.Replay(context.Background(), in.Source, in.Info, analyze.Options{}, &statusCount{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 200: 84
	// 201: 24
	// 404: 9
	// 503: 3
}
