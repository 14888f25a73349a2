package relay_test

import (
	"context"
	"log"
	"strings"

	relay "github.com/segrelay/relay"
)

// Record every session of the app's rooms, not the test streams, and hear
// when a file is ready (or why a recording stopped).
func ExampleWithRecording() {
	hub := relay.NewHub(
		relay.WithRecording("/var/lib/segrelay", func(stream string) bool {
			return !strings.HasPrefix(stream, "test-")
		}),
		relay.WithEvents(func(ev relay.Event) {
			if ev.Kind != relay.EventRecordEnd {
				return
			}
			if ev.Err != nil {
				log.Printf("recording %s stopped: %v", ev.Path, ev.Err)
				return
			}
			log.Printf("recorded %s: %s of %s", ev.Path, ev.Session.Duration, ev.Stream)
		}),
	)
	// ... mount the hub ...
	hub.Shutdown(context.Background()) // finishes the files being written
}
