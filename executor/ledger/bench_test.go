package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkRecordAttempt measures RecordAttempt commits per second for each
// synchronous setting, from one goroutine and from many (writes serialise
// on one connection, so parallel callers measure queueing, not speed-up),
// and with and without BeginAttempt (two commits per call instead of one).
func BenchmarkRecordAttempt(b *testing.B) {
	for _, sync := range []Sync{SyncFull, SyncNormal} {
		for _, mode := range []string{"serial", "parallel", "serial+begin"} {
			b.Run(fmt.Sprintf("sync=%s/%s", sync, mode), func(b *testing.B) {
				l := openTest(b, Options{Synchronous: sync, Now: time.Now})
				id := mustRun(b, l, "", "bench", false, "n")
				a := Attempt{RunID: id, NodeID: "n", Model: "m", Provider: "p", Outcome: OutcomeOK, CostNano: 3,
					Usage: Usage{InputTokens: 1200, OutputTokens: 300}, UsageReported: true}
				rc, err := l.RecordAttempt(a) // valid before timing
				require.NoError(b, err)
				require.EqualValues(b, 3, rc.RunSpentNano)
				b.ReportAllocs()
				b.ResetTimer()
				switch mode {
				case "serial":
					for i := 0; i < b.N; i++ {
						if _, err := l.RecordAttempt(a); err != nil {
							b.Fatal(err)
						}
					}
				case "serial+begin":
					for i := 0; i < b.N; i++ {
						seq, err := l.BeginAttempt(CallStart{RunID: id, NodeID: "n", Model: "m", EstimateNano: 3})
						if err != nil {
							b.Fatal(err)
						}
						a := a
						a.Seq = seq
						if _, err := l.RecordAttempt(a); err != nil {
							b.Fatal(err)
						}
					}
				case "parallel":
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := l.RecordAttempt(a); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				rec, err := l.Run(id)
				require.NoError(b, err)
				require.EqualValues(b, 3*int64(b.N+1), rec.SpentNano)
			})
		}
	}
}
