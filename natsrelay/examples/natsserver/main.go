// Command natsserver runs a NATS server with JetStream, embedded, for
// trying natsrelay without installing nats-server:
//
//	go run ./natsrelay/examples/natsserver                 # nats://127.0.0.1:4222
//	go run ./natsrelay/examples/natsserver -port 4223 -max-payload 65536
//
// In production run the nats-server binary (nats-server -js), a cluster
// of three for a NATS server's loss: see natsrelay's README.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	port := flag.Int("port", 4222, "client port (on 127.0.0.1)")
	maxPayload := flag.Int("max-payload", 0, "max message size in bytes (0: the server's default, 1 MiB)")
	store := flag.String("store", "", "JetStream directory (default: a temporary one)")
	flag.Parse()
	if *store == "" {
		dir, err := os.MkdirTemp("", "natsserver")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*store = dir
	}
	ns, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       *port,
		JetStream:  true,
		StoreDir:   *store,
		MaxPayload: int32(*maxPayload),
	})
	if err != nil {
		log.Fatal(err)
	}
	ns.ConfigureLogger()
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	log.Printf("NATS with JetStream on %s", ns.ClientURL())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	ns.Shutdown()
	ns.WaitForShutdown()
}
