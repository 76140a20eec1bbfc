package mllp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchSizes are the message sizes measured: an ADT, an ORU^R01 carrying a
// 100 KiB PDF in base64 (the load test's 186 kB payload), a large CDA.
var benchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"186kB", 186_000},
	{"4MiB", 4 << 20},
}

// benchMessage returns a message of size bytes without frame delimiters.
func benchMessage(size int) []byte {
	seg := "OBX|1|ED|PDF^Report||^application^pdf^Base64^JVBERi0xLjcKJcfs\r"
	return []byte(strings.Repeat(seg, size/len(seg)+1)[:size])
}

// cycleReader returns the same bytes over and over.
type cycleReader struct {
	data []byte
	off  int
}

func (r *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkReadMessage measures Reader.ReadMessage alone, from memory.
func BenchmarkReadMessage(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			msg := benchMessage(bs.size)
			r := NewReader(&cycleReader{data: []byte(frame(string(msg)))}, 0)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				got, err := r.ReadMessage()
				if err != nil || len(got) != len(msg) {
					b.Fatalf("ReadMessage: %d bytes, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkServer measures round trips (message in, short ACK out) through
// an in-process Server over loopback, from 1 and from 8 connections.
func BenchmarkServer(b *testing.B) {
	ack := []byte("MSH|^~\\&|MSS|DISPATCH|DPI|HOSP|20250101||ACK|1|P|2.5\rMSA|AA|1\r")
	for _, conns := range []int{1, 8} {
		for _, bs := range benchSizes[:2] {
			b.Run(fmt.Sprintf("conns=%d/%s", conns, bs.name), func(b *testing.B) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				srv := &Server{
					Handler: HandlerFunc(func(context.Context, []byte) []byte { return ack }),
					Logger:  slog.New(slog.DiscardHandler),
				}
				go func() { _ = srv.Serve(l) }()
				b.Cleanup(func() { _ = srv.Close() })
				clients := make(chan *Client, conns)
				for range conns {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					c, err := Dial(ctx, l.Addr().String())
					cancel()
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = c.Close() })
					clients <- c
				}
				msg := benchMessage(bs.size)
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				work := make(chan struct{})
				for range conns {
					c := <-clients
					wg.Go(func() {
						for range work {
							if _, err := c.Send(context.Background(), msg); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				for range b.N {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
			})
		}
	}
}
