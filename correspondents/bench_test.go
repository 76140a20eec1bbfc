package correspondents_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mssdispatch/mssdispatch/correspondents"
	"github.com/mssdispatch/mssdispatch/correspondents/internal/gen"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
)

// benchRows is the size of the extraction of BenchmarkDirectoryImport1M,
// about the size of the national file.
const benchRows = 1_000_000

// BenchmarkDirectoryImport1M measures the import of the real command: it
// builds mssdispatch, generates an extraction of 1,000,000 rows (gen, seed
// 1, 3 % duplicated rows) and runs `mssdispatch directory import FILE` as a
// child process against a fresh database, once per iteration.
//
// Sub-benchmarks: "first" imports into an empty directory, "again" imports
// the same file over itself (the daily case: almost nothing changes). It
// reports rows/s, the child's peak RSS (peak_rss_MB, from its rusage) and
// CPU time (child_cpu_s/op; the rest of the wall time is PostgreSQL's), and
// fails unless the command's summary counts every row and every distinct
// entry.
func BenchmarkDirectoryImport1M(b *testing.B) {
	if testing.Short() {
		b.Skip("imports 1,000,000 rows; not in -short mode")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "mssdispatch")
	build := exec.Command("go", "build", "-o", bin, "github.com/mssdispatch/mssdispatch/cmd/mssdispatch")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "Extraction_Correspondance_MSSante.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	st, err := gen.Write(f, gen.Config{Rows: benchRows, Seed: 1})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("extraction: %d rows, %d duplicates, %.1f MB", st.Rows, st.Duplicates, float64(st.Bytes)/1e6)
	distinct := st.Rows - st.Duplicates

	for _, again := range []bool{false, true} {
		name, want := "first", fmt.Sprintf("%d rows (0 skipped), %d added, 0 removed, 0 changed", st.Rows, distinct)
		if again {
			name, want = "again", fmt.Sprintf("%d rows (0 skipped), 0 added, 0 removed, 0 changed", st.Rows)
		}
		b.Run(name, func(b *testing.B) {
			var (
				elapsed, cpu time.Duration
				peakKiB      int64
			)
			for range b.N {
				b.StopTimer()
				dbURL := pgtest.NewDatabase(b)
				if again {
					runImport(b, bin, dbURL, path)
				}
				b.StartTimer()
				began := time.Now()
				out, usage := runImport(b, bin, dbURL, path)
				elapsed += time.Since(began)
				cpu += time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
				peakKiB = max(peakKiB, usage.Maxrss) // KiB on Linux
				if want := fmt.Sprintf("directory imported from %s: %s\n", path, want); out != want {
					b.Fatalf("summary: got %q, want %q", out, want)
				}
			}
			b.ReportMetric(float64(st.Rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(float64(peakKiB)/1024, "peak_rss_MB")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "child_cpu_s/op")
		})
	}
}

// runImport runs `directory import path` on dbURL and returns its standard
// output and its resource usage (peak RSS, CPU time).
func runImport(b *testing.B, bin, dbURL, path string) (stdout string, usage *syscall.Rusage) {
	b.Helper()
	var out, errs bytes.Buffer
	cmd := exec.Command(bin, "directory", "import", path)
	cmd.Env = append(os.Environ(), "MSSDISPATCH_DATABASE_URL="+dbURL)
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		tail := errs.Bytes()[max(0, errs.Len()-2000):]
		b.Fatalf("mssdispatch directory import: %v\n%s", err, tail)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage for the child process")
	}
	return out.String(), ru
}

// BenchmarkExtractionReader measures parsing alone, without the database:
// 100,000 generated rows read from memory per iteration.
func BenchmarkExtractionReader(b *testing.B) {
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Config{Rows: 100_000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := correspondents.NewExtractionReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != st.Rows {
			b.Fatalf("read %d rows, want %d", n, st.Rows)
		}
	}
	b.ReportMetric(float64(st.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
