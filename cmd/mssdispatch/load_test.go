package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/hl7/mllp"
	"github.com/mssdispatch/mssdispatch/internal/pgtest"
	"github.com/mssdispatch/mssdispatch/internal/smtptest"
)

// loadTable is where TestLoadTable writes its table (make bench sets it).
var loadTable = flag.String("load-table", "", "run TestLoadTable and write its table into this markdown file")

// Sizes of TestLoadTable's runs.
const (
	loadSingle   = 200 // messages over one connection
	loadParallel = 800 // messages over loadConns connections
	loadConns    = 16
	loadReports  = 300 // reports of the end-to-end run
)

// loadRun is one measured run.
type loadRun struct {
	perSecond float64
	p50, p99  time.Duration
}

// TestLoadTable measures, in one run on this machine, how close the
// service's durable intake gets to what PostgreSQL allows, and its
// end-to-end throughput, then writes the table into -load-table (between
// the markers of its section): (a) the baseline, raw INSERT + COMMIT of the
// same 186 kB payload at the same concurrency; (b) MLLP intake (the built
// binary, sending to an SMTP sink) with 1 and 16 connections, ACK latency p50/p99;
// (c) reports per second from MLLP to SMTP acceptance by a local sink, three
// emails per report under rules that watch their acknowledgements, with the
// statements and commits a report cost, by one instance and by two on the
// one database; (d) the service's peak RSS.
func TestLoadTable(t *testing.T) {
	if *loadTable == "" {
		t.Skip("make bench runs it (-load-table)")
	}
	bin := buildBinary(t)
	msgs := benchMessages(t, loadSingle+loadParallel)
	start := time.Now()
	_, steal0 := machineCPU(t)
	payload := len(msgs[0])

	// (a) The physical limit of durable intake here: one row per message, committed.
	baseURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), baseURL+"&pool_max_conns="+strconv.Itoa(loadConns))
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(context.Background(), `CREATE TABLE load_baseline (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body bytea NOT NULL)`)
	require.NoError(t, err)
	insert := func(body []byte) error {
		_, err := pool.Exec(context.Background(), `INSERT INTO load_baseline (body) VALUES ($1)`, body)
		return err
	}
	baseline1 := measure(t, 1, loadSingle, func(i int) error { return insert(msgs[i]) })
	baseline16 := measure(t, loadConns, loadParallel, func(i int) error { return insert(msgs[loadSingle+i]) })

	// (b) MLLP intake of the real binary: parse, store, commit, ACK. Its
	// jobs send to an SMTP sink meanwhile, as in production (the outbox
	// transport would add an fsync of every email's file to the disk's load).
	sink := smtptest.Start(t, smtptest.Options{})
	smtpEnv := []string{"MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR=" + sink.Addr,
		"MSSDISPATCH_SMTP_CA_FILE=" + sink.CA.File, "MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7"}
	svc := startBinary(t, bin, demoDatabase(t), smtpEnv...)
	intake1 := measureMLLP(t, svc.mllpAddr, 1, msgs[:loadSingle])
	intake16 := measureMLLP(t, svc.mllpAddr, loadConns, msgs[loadSingle:])
	intakeRSS := svc.peakRSS(t)
	// Its resolve and send jobs would go on during the end-to-end run.
	svc.stop()

	// (c) End to end: three MSSanté emails per report, to another sink;
	// then the same with two instances on the one database.
	reports := make([][]byte, loadReports)
	for i := range reports {
		reports[i] = withThirdRecipient(t, benchMessages(t, 1)[0])
	}
	e2e, sink := endToEnd(t, bin, 1, reports)
	two, _ := endToEnd(t, bin, 2, reports)

	// (c) baseline: the same work without the service, at the same
	// concurrency: each report's INSERT + COMMIT, then its three emails (as
	// the service wrote them) handed to another sink over STARTTLS, one
	// connection per client kept open.
	floorSink := smtptest.Start(t, smtptest.Options{})
	emails := sink.Messages()[:3]
	clients := make(chan *smtp.Client, loadConns)
	for range loadConns {
		c, err := smtp.DialStartTLS(floorSink.Addr, &tls.Config{RootCAs: floorSink.CA.Pool})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		clients <- c
	}
	machine0, _ := machineCPU(t)
	floor := measure(t, loadConns, loadReports, func(i int) error {
		if err := insert(reports[i]); err != nil {
			return err
		}
		c := <-clients
		defer func() { clients <- c }()
		for _, m := range emails {
			if err := c.SendMail(m.From, m.To, bytes.NewReader(m.Data)); err != nil {
				return err
			}
		}
		return nil
	})
	machine, steal := machineCPU(t)
	floorCost := (machine - machine0) / loadReports
	stealShare := float64(steal-steal0) / float64(time.Since(start)*time.Duration(runtime.NumCPU()))

	table := loadMarkdown(loadResults{payload: payload, baseline1: baseline1, baseline16: baseline16, intake1: intake1,
		intake16: intake16, floor: floor.perSecond, floorCost: floorCost, endToEnd: e2e, twoInstances: two, steal: stealShare,
		intakeRSS: intakeRSS})
	t.Log("\n" + table)
	require.NoError(t, replaceSection(*loadTable, table))
}

// loadRules are the rules of the end-to-end runs: every email followed
// (a DSN within 24 hours, a read within 72).
const loadRules = `rules:
  - name: Suivi des accusés
    action:
      no_dsn_hours: 24
      no_dsn_action: worklist
      unread_hours: 72
      unread_action: paper
`

// e2eRun is one end-to-end run.
type e2eRun struct {
	perSecond float64 // reports/s
	cost      reportCost
	// statements and commits are what the instances sent PostgreSQL a
	// report (mssdispatch_db_statements_total).
	statements, commits float64
	rss                 float64 // the peak RSS of an instance, MiB
}

// endToEnd runs instances serve processes of bin on a fresh demo database,
// sending to a new SMTP sink (returned), sends them reports over loadConns
// MLLP connections spread across them, waits for every email, and
// measures it.
func endToEnd(t *testing.T, bin string, instances int, reports [][]byte) (e2eRun, *smtptest.Server) {
	t.Helper()
	sink := smtptest.Start(t, smtptest.Options{})
	dbURL := demoDatabase(t)
	// The CME's rules watch the acknowledgements, as a hospital's do (the
	// demo's "Lettre de liaison suivie"): each email sent has its deadlines.
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(loadRules), 0o600))
	cmd := exec.Command(bin, "rules", "import", rulesFile)
	cmd.Env = append(os.Environ(), "MSSDISPATCH_DATABASE_URL="+dbURL)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	env := []string{"MSSDISPATCH_TRANSPORT=smtp", "MSSDISPATCH_SMTP_ADDR=" + sink.Addr,
		"MSSDISPATCH_SMTP_CA_FILE=" + sink.CA.File, "MSSDISPATCH_SOURCE_OID=1.2.250.1.999.7"}
	procs := make([]*process, instances)
	for i := range procs {
		procs[i] = startBinary(t, bin, dbURL, env...)
	}
	cpu := func() (services time.Duration, statements map[string]float64) {
		statements = map[string]float64{}
		for _, p := range procs {
			services += processCPU(t, p.cmd.Process.Pid)
			for k, v := range p.statements(t) {
				statements[k] += v
			}
		}
		return services, statements
	}
	self := os.Getpid()
	machine0, _ := machineCPU(t)
	services0, statements0 := cpu()
	began, self0, pg0 := time.Now(), processCPU(t, self), postgresCPU(t)
	var wg sync.WaitGroup
	for i, p := range procs { // loadConns connections in all, the reports split evenly
		wg.Go(func() {
			var mine [][]byte
			for j := i; j < len(reports); j += instances {
				mine = append(mine, reports[j])
			}
			measureMLLP(t, p.mllpAddr, loadConns/instances, mine)
		})
	}
	wg.Wait()
	sink.WaitMessages(t, 3*len(reports), 10*time.Minute)
	n := time.Duration(len(reports))
	run := e2eRun{perSecond: float64(len(reports)) / time.Since(began).Seconds()}
	machine, _ := machineCPU(t)
	services, statements := cpu()
	run.cost = reportCost{service: (services - services0) / n, test: (processCPU(t, self) - self0) / n,
		machine: (machine - machine0) / n}
	for pid, used := range postgresCPU(t) {
		run.cost.postgres += (used - pg0[pid]) / n // a backend started since counts from 0
	}
	run.statements = (statements["statement"] - statements0["statement"]) / float64(n)
	run.commits = (statements["commit"] + statements["autocommit"] - statements0["commit"] - statements0["autocommit"]) / float64(n)
	for _, p := range procs {
		run.rss = max(run.rss, p.peakRSS(t))
		p.stop()
	}
	return run, sink
}

// statements scrapes the process's mssdispatch_db_statements_total, by kind.
func (p *process) statements(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, m := range statementLine.FindAllSubmatch(body, -1) {
		v, err := strconv.ParseFloat(string(m[2]), 64)
		require.NoError(t, err)
		out[string(m[1])] = v
	}
	require.NotEmpty(t, out, "mssdispatch_db_statements_total in /metrics")
	return out
}

var statementLine = regexp.MustCompile(`(?m)^mssdispatch_db_statements_total\{kind="(\w+)"\} (\S+)$`)

// measure runs do(i) for i in [0, n) over conns goroutines and times each call.
func measure(t *testing.T, conns, n int, do func(i int) error) loadRun {
	t.Helper()
	latencies := make([]time.Duration, n)
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					failures.Add(1)
					t.Errorf("call %d: %v", i, err)
				}
				latencies[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	require.Zero(t, failures.Load())
	slices.Sort(latencies)
	return loadRun{perSecond: float64(n) / elapsed.Seconds(), p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99)}
}

// measureMLLP sends msgs over conns MLLP connections and checks every AA.
func measureMLLP(t *testing.T, addr string, conns int, msgs [][]byte) loadRun {
	t.Helper()
	clients := make(chan *mllp.Client, conns)
	for range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := mllp.Dial(ctx, addr)
		cancel()
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		clients <- c
	}
	return measure(t, conns, len(msgs), func(i int) error {
		c := <-clients
		defer func() { clients <- c }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ack, err := c.Send(ctx, msgs[i])
		if problem := ackProblem(msgs[i], ack, err); problem != "" {
			return fmt.Errorf("%s", problem)
		}
		return nil
	})
}

// withThirdRecipient adds Paul Leroux (one address in the demo directory) to
// the sample's recipients, after the last of them: Claire and Julie get an
// email, Martin (two addresses) waits in review, Paul gets the third email.
func withThirdRecipient(t *testing.T, msg []byte) []byte {
	t.Helper()
	s := string(msg)
	last := strings.LastIndex(s, "\rPRT|")
	require.Positive(t, last, "the sample lists its recipients in PRT segments")
	end := last + 1 + strings.IndexByte(s[last+1:], '\r')
	require.Greater(t, end, last, "the sample's last PRT is followed by another segment")
	prt := "\rPRT||UC||RCT^Result Copies To^participation|899900000003^LEROUX^Paul^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
	return []byte(s[:end] + prt + s[end:])
}

// process is a running mssdispatch serve.
type process struct {
	cmd                *exec.Cmd
	mllpAddr, httpAddr string
}

// startBinary runs bin serve on dbURL with the extra environment.
func startBinary(t *testing.T, bin, dbURL string, extra ...string) *process {
	t.Helper()
	p := &process{mllpAddr: freeAddr(t), httpAddr: freeAddr(t)}
	logs := &lockedBuffer{}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(append(os.Environ(), "MSSDISPATCH_DATABASE_URL="+dbURL, "MSSDISPATCH_API_TOKEN="+testToken,
		"MSSDISPATCH_SENDER="+testSender, "MSSDISPATCH_MLLP_ADDR="+p.mllpAddr, "MSSDISPATCH_HTTP_ADDR="+p.httpAddr,
		"MSSDISPATCH_LOG_LEVEL=warn"), extra...)
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	require.NoError(t, p.cmd.Start())
	t.Cleanup(p.stop)
	waitReady(t, p.httpAddr, logs)
	return p
}

// stop kills the process and waits for its end (again: a no-op).
func (p *process) stop() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

// reportCost is the CPU time a report took end to end.
type reportCost struct {
	service  time.Duration // the service's process
	test     time.Duration // this process: the SMTP sink and the MLLP load
	postgres time.Duration // the processes named postgres (of every cluster on the machine)
	machine  time.Duration // every CPU of the machine: those three, the kernel, anything else
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU is the CPU time process pid used so far (user + system).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	_, used := procStat(t, stat)
	return used
}

// procStat reads the command name and the CPU time (user + system) of a
// /proc/PID/stat.
func procStat(t *testing.T, stat []byte) (comm string, used time.Duration) {
	t.Helper()
	// The name is in parentheses (it may hold spaces); utime and stime are
	// the 14th and 15th fields of the line, the 12th and 13th after the name.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[end+1:]))
	return string(stat[open+1 : end]), ticks(t, fields[11]) + ticks(t, fields[12])
}

// postgresCPU is the CPU time used so far by each process named postgres.
func postgresCPU(t *testing.T) map[string]time.Duration {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	used := map[string]time.Duration{}
	for _, f := range stats {
		stat, err := os.ReadFile(f)
		if err != nil {
			continue // the process ended
		}
		if comm, u := procStat(t, stat); comm == "postgres" {
			used[f] = u
		}
	}
	return used
}

// machineCPU is the CPU time every CPU of the machine spent busy so far
// (/proc/stat: all but idle and iowait), and the part of it when the VM's
// host ran other machines on them (steal). Busy counts steal because the
// processes' own CPU times take in some of it.
func machineCPU(t *testing.T) (busy, steal time.Duration) {
	t.Helper()
	stat, err := os.ReadFile("/proc/stat")
	require.NoError(t, err)
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i, f := range fields[1:min(len(fields), 9)] {
		if i != 3 && i != 4 {
			busy += ticks(t, f)
		}
	}
	if len(fields) > 8 {
		steal = ticks(t, fields[8])
	}
	return busy, steal
}

// ticks converts a /proc count of clock ticks.
func ticks(t *testing.T, s string) time.Duration {
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return time.Duration(n) * clockTick
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// peakRSS is the process's peak resident set size, in MiB.
func (p *process) peakRSS(t *testing.T) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	require.NoError(t, err)
	m := vmHWM.FindSubmatch(status)
	require.NotNil(t, m, "VmHWM in /proc/<pid>/status")
	kb, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return float64(kb) / 1024
}

// loadResults are TestLoadTable's measures.
type loadResults struct {
	payload                                  int
	baseline1, baseline16, intake1, intake16 loadRun
	// floor is the end-to-end baseline, in reports/s; floorCost its machine
	// CPU time per report.
	floor     float64
	floorCost time.Duration
	// endToEnd is the run with one instance, twoInstances with two.
	endToEnd, twoInstances e2eRun
	// steal is the share of the CPUs' time that the VM's host gave to other
	// machines during the runs.
	steal float64
	// intakeRSS is the service's peak RSS in MiB during the intake runs.
	intakeRSS float64
}

// loadMarkdown is the section TestLoadTable writes.
func loadMarkdown(r loadResults) string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	host, _ := os.Hostname()
	cpu := "unknown"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`model name\s*:\s*(.+)`).FindSubmatch(info); m != nil {
			cpu = string(m[1])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nWritten by `make bench` (TestLoadTable, cmd/mssdispatch/load_test.go) on %s: %s, %d CPUs, %s.\n",
		loadStart, time.Now().Format("2006-01-02 15:04"), cpu, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "Payload: the sample ORU^R01 with a 100 KiB PDF, %d bytes. Host %s.\n", r.payload, host)
	fmt.Fprintf(&b, "During these runs the VM's host gave %.0f %% of its CPUs' time to other machines (steal, /proc/stat).\n\n", 100*r.steal)
	b.WriteString("| measure | 1 connection | 16 connections | PostgreSQL statements / commits a report |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| (a) baseline: INSERT + COMMIT of the payload, msgs/s | %.0f | %.0f | 1 / 1 |\n", r.baseline1.perSecond, r.baseline16.perSecond)
	fmt.Fprintf(&b, "| (b) MLLP intake to its ACK, msgs/s | %.0f | %.0f | |\n", r.intake1.perSecond, r.intake16.perSecond)
	fmt.Fprintf(&b, "| (b) intake / baseline | %.0f %% | %.0f %% | |\n", 100*r.intake1.perSecond/r.baseline1.perSecond, 100*r.intake16.perSecond/r.baseline16.perSecond)
	fmt.Fprintf(&b, "| (b) ACK latency p50 / p99, ms | %s / %s | %s / %s | |\n", ms(r.intake1.p50), ms(r.intake1.p99), ms(r.intake16.p50), ms(r.intake16.p99))
	fmt.Fprintf(&b, "| (c) baseline: INSERT + COMMIT of the payload, then its 3 emails (the service's) over SMTP + STARTTLS to a sink, reports/s | | %.1f | 1 / 1 |\n", r.floor)
	for _, run := range []struct {
		name string
		e2eRun
	}{{"end to end", r.endToEnd}, {"end to end, 2 `serve` instances on the one database (8 connections each)", r.twoInstances}} {
		c := run.cost
		fmt.Fprintf(&b, "| (c) %s, MLLP to SMTP acceptance, 3 emails per report with their acknowledgement deadlines, reports/s | | %.1f | %.1f / %.1f |\n",
			run.name, run.perSecond, run.statements, run.commits)
		fmt.Fprintf(&b, "| (c) %s / baseline | | %.0f %% | |\n", run.name, 100*run.perSecond/r.floor)
		fmt.Fprintf(&b, "| (c) CPU time a report took, %s, ms: the service + the SMTP sink and the MLLP load + PostgreSQL + the kernel and the rest = the machine | | %s + %s + %s + %s = %s | |\n",
			run.name, ms(c.service), ms(c.test), ms(c.postgres), ms(c.machine-c.service-c.test-c.postgres), ms(c.machine))
		fmt.Fprintf(&b, "| (c) what the machine's %d CPUs allow at the cost of %s, reports/s | | %.0f | |\n", runtime.NumCPU(), run.name,
			float64(runtime.NumCPU())*float64(time.Second)/float64(c.machine))
	}
	fmt.Fprintf(&b, "| (c) CPU time a report took in the baseline, ms, the whole machine | | %s | |\n", ms(r.floorCost))
	fmt.Fprintf(&b, "| (d) peak RSS of the service, MiB (intake run / end-to-end run / each of 2 instances) | | %.0f / %.0f / %.0f | |\n",
		r.intakeRSS, r.endToEnd.rss, r.twoInstances.rss)
	b.WriteString("\n" + loadEnd)
	return b.String()
}

// The markers of the section TestLoadTable replaces in its file.
const (
	loadStart = "<!-- load table: begin (make bench rewrites this section) -->"
	loadEnd   = "<!-- load table: end -->"
)

// replaceSection puts section in place of the one between the markers in
// file, or at its end.
func replaceSection(file, section string) error {
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, loadStart), strings.Index(s, loadEnd)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(loadEnd):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n## Load table\n\n" + section + "\n"
	}
	return os.WriteFile(file, []byte(s), 0o644)
}
