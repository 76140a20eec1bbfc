package hl7intake

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mssdispatch/mssdispatch/dispatch"
	"github.com/mssdispatch/mssdispatch/hl7"
	"github.com/mssdispatch/mssdispatch/hl7/mllp"
)

var notifierLog = slog.New(slog.DiscardHandler)

// dpiReply is what the fake DPI answers to one message: an ACK of code
// (MSA-1) with, when err is not 0, an ERR of that code (HL7 table 0357).
// An empty code is no answer at all.
type dpiReply struct {
	code string
	err  int
}

// fakeDPI is an MLLP listener playing the DPI: it keeps every message it
// gets and answers each with what answer returns.
type fakeDPI struct {
	addr string
	srv  *mllp.Server

	mu       sync.Mutex
	received [][]byte
	answer   func(n int) dpiReply // n: 1 for the first message
}

// startDPI starts a fake DPI on addr ("127.0.0.1:0" for any port).
func startDPI(t *testing.T, addr string, answer func(n int) dpiReply) *fakeDPI {
	t.Helper()
	d := &fakeDPI{answer: answer}
	d.srv = &mllp.Server{Handler: mllp.HandlerFunc(d.serve), Logger: notifierLog}
	var l net.Listener
	var err error
	require.Eventually(t, func() bool { // the port of a listener just closed may take a moment
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "listen on %s", addr)
	d.addr = l.Addr().String()
	go func() { _ = d.srv.Serve(l) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

// always answers every message with code (and ERR err when not 0).
func always(code string, err int) func(int) dpiReply {
	return func(int) dpiReply { return dpiReply{code: code, err: err} }
}

func (d *fakeDPI) serve(_ context.Context, msg []byte) []byte {
	d.mu.Lock()
	d.received = append(d.received, msg)
	n := len(d.received)
	d.mu.Unlock()
	r := d.answer(n)
	if r.code == "" {
		return nil
	}
	m, err := hl7.Parse(msg, hl7.ParseOptions{})
	if err != nil {
		return hl7.NewACKFor(hl7.ControlIDOf(msg), hl7.AckReject, "DPI-ACK", time.Now()).Encode()
	}
	var errs []hl7.ErrDetail
	if r.err != 0 {
		errs = append(errs, hl7.ErrDetail{Code: r.err, Msg: "message d'origine inconnu"})
	}
	return hl7.NewACK(m, r.code, "DPI-ACK", time.Now(), errs...).Encode()
}

// messages returns the messages the DPI got, parsed.
func (d *fakeDPI) messages(t *testing.T) []*hl7.Message {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*hl7.Message, 0, len(d.received))
	for _, raw := range d.received {
		m, err := hl7.Parse(raw, hl7.ParseOptions{})
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// newNotifier returns a Notifier of the DPI at addr, sending as MSSDISPATCH/CH-DEMO.
func newNotifier(t *testing.T, addr string, configure ...func(*NotifierConfig)) *Notifier {
	t.Helper()
	cfg := NotifierConfig{Addr: addr, SendingApplication: "MSSDISPATCH", SendingFacility: "CH-DEMO", Timeout: 2 * time.Second}
	for _, c := range configure {
		c(&cfg)
	}
	n, err := NewNotifier(cfg)
	require.NoError(t, err)
	return n
}

// notice is the acknowledgement of event about delivery 7 of a report that
// came as message MSG-0042 from DPI/CH to PFI/CH-PFI, for Julie Roux.
func notice(event string) dispatch.DPINotice {
	return dispatch.DPINotice{DeliveryID: 7, Event: event, At: time.Date(2024, 3, 1, 10, 30, 15, 0, time.UTC),
		Address: "julie.roux@medecin-demo.mssante.fr", RecipientID: "899900000007",
		SendingApplication: "DPI", SendingFacility: "CH", ControlID: "MSG-0042",
		ReceivingApplication: "PFI", ReceivingFacility: "CH-PFI"}
}

// TestNotifierZAM checks the ZAM the DPI gets for each event, and that its
// AA is an accepted answer.
func TestNotifierZAM(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", always(hl7.AckAccept, 0))
	n := newNotifier(t, dpi.addr)
	for _, event := range []string{hl7.ZAMDelivery, hl7.ZAMRead} {
		answer, err := n.NotifyDPI(context.Background(), notice(event))
		require.NoError(t, err)
		require.Equal(t, dispatch.DPIAnswer{Detail: "ZAM-" + event + "-7: AA"}, answer)
	}
	require.Equal(t, "ZAM-Z03-7", zamControlID(notice(hl7.ZAMRead)))

	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	for i, event := range []string{hl7.ZAMDelivery, hl7.ZAMRead} {
		m := msgs[i]
		code, ev, structure := m.Type()
		require.Equal(t, []string{"ZAM", event, "ZAM_Z01"}, []string{code, ev, structure})
		require.Equal(t, zamControlID(notice(event)), m.ControlID())
		require.Equal(t, "ZAM-"+event+"-7", m.ControlID())
		msh := m.Segment("MSH")
		require.Equal(t, []string{"MSSDISPATCH", "CH-DEMO", "DPI", "CH"}, []string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6)},
			"from us to the DPI that sent the report (its MSH-3/4)")
		require.Equal(t, "P", msh.Get(11))
		require.Equal(t, "2.6", m.Version())
		require.Equal(t, "CISIS_CDA_HL7_V2", msh.Component(21, 2))
		require.Nil(t, m.Segment("PID"), "no patient data in a ZAM")
		require.Nil(t, m.Segment("ERR"))
		evn := m.SegmentsNamed("EVN")
		require.Len(t, evn, 1)
		require.Equal(t, "20240301103015", evn[0].Get(2), "when the email was delivered or read")
		obx := m.SegmentsNamed("OBX")
		require.Len(t, obx, 2)
		status, who := hl7.OBX{Segment: obx[0]}, hl7.OBX{Segment: obx[1]}
		want := map[string][2]string{hl7.ZAMDelivery: {"ACK_RECEPTION_MSS", "DESTINATAIRE_MSS"}, hl7.ZAMRead: {"ACK_LECTURE_MSS", "LECTEUR_MSS"}}[event]
		require.Equal(t, want[0], status.Identifier().Identifier)
		require.Equal(t, "MSG-0042", status.Get(4), "OBX-4 is the MSH-10 of the report's message")
		require.Equal(t, "Y", status.CodedValue().Identifier)
		require.Equal(t, want[1], who.Identifier().Identifier)
		require.Equal(t, "899900000007", who.Get(4), "OBX-4 is the recipient's id as the DPI gave it")
		require.Equal(t, "X.400", who.Value().Rep(0).Comp(3))
		require.Equal(t, "julie.roux@medecin-demo.mssante.fr", who.Value().Rep(0).Comp(4))
	}

	// Another processing id.
	test := newNotifier(t, dpi.addr, func(c *NotifierConfig) { c.ProcessingID = "T" })
	_, err := test.NotifyDPI(context.Background(), notice(hl7.ZAMDelivery))
	require.NoError(t, err)
	require.Equal(t, "T", dpi.messages(t)[2].Segment("MSH").Get(11))
}

// TestNotifierHeader checks that a ZAM comes from what the DPI named as the
// receiver of its message (its MSH-5 and MSH-6), unless configured, and
// from MSSDISPATCH when it named none.
func TestNotifierHeader(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", always(hl7.AckAccept, 0))
	n := newNotifier(t, dpi.addr, func(c *NotifierConfig) { c.SendingApplication, c.SendingFacility = "", "" })

	_, err := n.NotifyDPI(context.Background(), notice(hl7.ZAMDelivery))
	require.NoError(t, err)
	anonymous := notice(hl7.ZAMRead)
	anonymous.ReceivingApplication, anonymous.ReceivingFacility = "", ""
	_, err = n.NotifyDPI(context.Background(), anonymous)
	require.NoError(t, err)

	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	msh := msgs[0].Segment("MSH")
	require.Equal(t, []string{"PFI", "CH-PFI", "DPI", "CH"}, []string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6)},
		"the DPI's MSH-5/6 and MSH-3/4, swapped as in the volet's examples")
	msh = msgs[1].Segment("MSH")
	require.Equal(t, []string{"MSSDISPATCH", "", "DPI", "CH"}, []string{msh.Get(3), msh.Get(4), msh.Get(5), msh.Get(6)})
}

// TestNotifierAnswers checks what each ACK of the DPI makes of a ZAM:
// accepted, refused for good, or an error to retry.
func TestNotifierAnswers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		reply   dpiReply
		refused bool
		detail  string // the answer's, when not an error
		err     string // the error's, when one
	}{
		{name: "AA", reply: dpiReply{code: "AA"}, detail: "ZAM-Z02-7: AA"},
		{name: "CA", reply: dpiReply{code: "CA"}, detail: "ZAM-Z02-7: CA"},
		{name: "AE", reply: dpiReply{code: "AE", err: hl7.CodeUnknownKey}, refused: true,
			detail: "ZAM-Z02-7: AE 204 message d'origine inconnu"},
		{name: "AE without ERR", reply: dpiReply{code: "AE"}, refused: true, detail: "ZAM-Z02-7: AE"},
		{name: "CE", reply: dpiReply{code: "CE", err: hl7.CodeUnknownKey}, refused: true,
			detail: "ZAM-Z02-7: CE 204 message d'origine inconnu"},
		{name: "AR unsupported message type", reply: dpiReply{code: "AR", err: hl7.CodeUnsupportedMessageType}, refused: true,
			detail: "ZAM-Z02-7: AR 200 message d'origine inconnu"},
		{name: "AR unsupported event", reply: dpiReply{code: "AR", err: hl7.CodeUnsupportedEvent}, refused: true,
			detail: "ZAM-Z02-7: AR 201 message d'origine inconnu"},
		{name: "AR unsupported processing id", reply: dpiReply{code: "AR", err: hl7.CodeUnsupportedProcessingID}, refused: true,
			detail: "ZAM-Z02-7: AR 202 message d'origine inconnu"},
		{name: "AR unsupported version", reply: dpiReply{code: "CR", err: hl7.CodeUnsupportedVersion}, refused: true,
			detail: "ZAM-Z02-7: CR 203 message d'origine inconnu"},
		{name: "AR internal error", reply: dpiReply{code: "AR", err: hl7.CodeInternal},
			err: "ZAM^Z02 ZAM-Z02-7 rejected for now by the DPI (AR 207)"},
		{name: "AR record locked", reply: dpiReply{code: "AR", err: hl7.CodeRecordLocked}, err: "(AR 206)"},
		{name: "AR without ERR", reply: dpiReply{code: "AR"}, err: "ZAM^Z02 ZAM-Z02-7 rejected for now by the DPI (AR"},
		{name: "unknown code", reply: dpiReply{code: "XX"}, err: `the DPI's answer has MSA-1 "XX"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dpi := startDPI(t, "127.0.0.1:0", always(tt.reply.code, tt.reply.err))
			answer, err := newNotifier(t, dpi.addr).NotifyDPI(context.Background(), notice(hl7.ZAMDelivery))
			require.Len(t, dpi.messages(t), 1)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.NotErrorIs(t, err, dispatch.ErrUnsendable, "retried")
				require.Zero(t, answer)
				return
			}
			require.NoError(t, err)
			require.Equal(t, dispatch.DPIAnswer{Refused: tt.refused, Detail: tt.detail}, answer)
		})
	}
}

// TestNotifierNoAnswer makes a ZAM the DPI did not acknowledge in time an
// error to retry, and the retry has the same MSH-10, so that the DPI can
// tell it got it twice.
func TestNotifierNoAnswer(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", func(n int) dpiReply {
		if n == 1 {
			return dpiReply{} // swallowed
		}
		return dpiReply{code: hl7.AckAccept}
	})
	n := newNotifier(t, dpi.addr, func(c *NotifierConfig) { c.Timeout = 300 * time.Millisecond })

	start := time.Now()
	_, err := n.NotifyDPI(context.Background(), notice(hl7.ZAMRead))
	require.Error(t, err)
	require.NotErrorIs(t, err, dispatch.ErrUnsendable)
	require.ErrorContains(t, err, "ZAM^Z03 ZAM-Z03-7")
	require.ErrorContains(t, err, "maybe delivered: true")
	require.Less(t, time.Since(start), 5*time.Second, "bounded by the Timeout")

	answer, err := n.NotifyDPI(context.Background(), notice(hl7.ZAMRead))
	require.NoError(t, err)
	require.Equal(t, dispatch.DPIAnswer{Detail: "ZAM-Z03-7: AA"}, answer)
	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	require.Equal(t, "ZAM-Z03-7", msgs[0].ControlID())
	require.Equal(t, msgs[0].ControlID(), msgs[1].ControlID())
}

// TestNotifierDPIDown makes an unreachable DPI an error to retry, and
// sends when it comes back.
func TestNotifierDPIDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // the DPI is down
	n := newNotifier(t, addr)

	_, err = n.NotifyDPI(context.Background(), notice(hl7.ZAMDelivery))
	require.Error(t, err)
	require.NotErrorIs(t, err, dispatch.ErrUnsendable)
	require.ErrorContains(t, err, "send ZAM^Z02 ZAM-Z02-7 (maybe delivered: false)")

	dpi := startDPI(t, addr, always(hl7.AckAccept, 0)) // it comes back
	answer, err := n.NotifyDPI(context.Background(), notice(hl7.ZAMDelivery))
	require.NoError(t, err)
	require.False(t, answer.Refused)
	require.Len(t, dpi.messages(t), 1)
}

// TestNotifierUnsendable gives up, with an error wrapping
// dispatch.ErrUnsendable, a notice whose ZAM cannot be built.
func TestNotifierUnsendable(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", always(hl7.AckAccept, 0))
	n := newNotifier(t, dpi.addr)
	for name, edit := range map[string]func(*dispatch.DPINotice){
		"no DPI application": func(n *dispatch.DPINotice) { n.SendingApplication = "" },
		"no address":         func(n *dispatch.DPINotice) { n.Address = "" },
		"no control id":      func(n *dispatch.DPINotice) { n.ControlID = " " },
		"unknown event":      func(n *dispatch.DPINotice) { n.Event = "Z04" },
	} {
		notice := notice(hl7.ZAMDelivery)
		edit(&notice)
		_, err := n.NotifyDPI(context.Background(), notice)
		require.ErrorIs(t, err, dispatch.ErrUnsendable, name)
		require.ErrorIs(t, err, hl7.ErrZAM, name)
	}
	require.Empty(t, dpi.messages(t), "nothing sent")
}

// TestNotifierFailure tells the DPI that a delivery failed, with the SMTP
// code of the DSN in the ERR segment, or a reading failed, with the
// MSSanté error code of the MDN.
func TestNotifierFailure(t *testing.T) {
	t.Parallel()
	dpi := startDPI(t, "127.0.0.1:0", always(hl7.AckAccept, 0))
	n := newNotifier(t, dpi.addr)

	dsn := notice(hl7.ZAMDelivery)
	dsn.Failed, dsn.Detail = true, "DSN failed 5.1.1 smtp; 550 5.1.1 No such user"
	_, err := n.NotifyDPI(context.Background(), dsn)
	require.NoError(t, err)
	mdn := notice(hl7.ZAMRead)
	mdn.Failed, mdn.Detail = true, "MDN processed/error 902 Identifiant patient inconnu"
	_, err = n.NotifyDPI(context.Background(), mdn)
	require.NoError(t, err)

	msgs := dpi.messages(t)
	require.Len(t, msgs, 2)
	for i, want := range [][]string{
		{"550", hl7.ZAMErrorText(hl7.ZAMDelivery, "550"), "SMTPERRORCODE"},
		{"902", hl7.ZAMErrorText(hl7.ZAMRead, "902"), "applicationErrorCondition"},
	} {
		require.Equal(t, "N", hl7.OBX{Segment: msgs[i].SegmentsNamed("OBX")[0]}.CodedValue().Identifier)
		e := msgs[i].Segment("ERR")
		require.NotNil(t, e)
		require.Equal(t, "207", e.Component(3, 1))
		require.NotEmpty(t, want[1])
		require.Equal(t, want, []string{e.Component(5, 1), e.Component(5, 2), e.Component(5, 3)})
	}
}

func TestNewNotifierConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]NotifierConfig{
		"no address":       {},
		"bad address":      {Addr: "dpi-without-port"},
		"bad processing":   {Addr: "127.0.0.1:2576", ProcessingID: "X"},
		"negative timeout": {Addr: "127.0.0.1:2576", Timeout: -time.Second},
	} {
		_, err := NewNotifier(cfg)
		require.Error(t, err, name)
	}
	for _, processing := range []string{"", "P", "T", "D"} {
		n, err := NewNotifier(NotifierConfig{Addr: "127.0.0.1:2576", ProcessingID: processing})
		require.NoError(t, err, processing)
		require.Equal(t, mllp.DefaultTimeout, n.cfg.Timeout)
		require.NotEmpty(t, n.cfg.ProcessingID)
	}
	var _ dispatch.DPINotifier = (*Notifier)(nil)
}

// TestFailedAck checks the ERR of each kind of failure: the SMTP reply code
// of a DSN when it gives one, else the code its enhanced status code (RFC
// 3463) maps to in dsnStatusCodes, else 554; the MSSanté error code of an MDN.
func TestFailedAck(t *testing.T) {
	t.Parallel()
	dsn := func(code, text string) hl7.ZAMError { return hl7.ZAMError{Code: code, Text: text} }
	mdn := dsn
	tests := []struct {
		event, detail string
		want          hl7.ZAMError
	}{
		// The DSN's own SMTP reply code: the volet's label says it, or the detail does.
		{"Z02", "DSN failed 5.1.1 smtp; 550 5.1.1 No such user", dsn("550", "")},
		{"Z02", "DSN failed 5.2.2 smtp; 552-5.2.2 Mailbox full", dsn("552", "")},
		{"Z02", "DSN failed 4.4.7 (smtp; 421 too busy)", dsn("421", "")},
		{"Z02", "DSN failed 4.4.7 smtp; 499 gave up", dsn("499", "DSN failed 4.4.7 smtp; 499 gave up")},
		// No SMTP reply code: the enhanced status code.
		{"Z02", "DSN failed 4.4.7", dsn("441", "DSN failed 4.4.7")},
		{"Z02", "DSN failed 5.4.7 X-Postfix; delivery time expired", dsn("441", "DSN failed 5.4.7 X-Postfix; delivery time expired")},
		{"Z02", "DSN failed 4.4.1 X-Postfix; connect to mx.example.org: Connection timed out", dsn("441", "DSN failed 4.4.1 X-Postfix; connect to mx.example.org: Connection timed out")},
		{"Z02", "DSN failed 5.4.2", dsn("442", "DSN failed 5.4.2")},
		{"Z02", "DSN failed 4.2.2", dsn("422", "DSN failed 4.2.2")},
		{"Z02", "DSN failed 5.2.2", dsn("552", "DSN failed 5.2.2")},
		{"Z02", "DSN failed 5.3.4", dsn("523", "DSN failed 5.3.4")},
		{"Z02", "DSN failed 5.1.2 X-Postfix; Host or domain name not found", dsn("512", "DSN failed 5.1.2 X-Postfix; Host or domain name not found")},
		{"Z02", "DSN failed 4.4.4", dsn("512", "DSN failed 4.4.4")},
		{"Z02", "DSN failed 5.4.4", dsn("512", "DSN failed 5.4.4")},
		{"Z02", "DSN failed 5.7.1 X-Postfix; Relay access denied", dsn("541", "DSN failed 5.7.1 X-Postfix; Relay access denied")},
		{"Z02", "DSN failed 5.7.26", dsn("541", "DSN failed 5.7.26")},
		{"Z02", "DSN failed 5.1.1", dsn("550", "DSN failed 5.1.1")},
		{"Z02", "DSN failed 5.1.10.", dsn("550", "DSN failed 5.1.10.")},
		{"Z02", "DSN failed 5.4.70", dsn("554", "DSN failed 5.4.70")},
		{"Z02", "DSN failed 5.0.0", dsn("554", "DSN failed 5.0.0")},
		{"Z02", "DSN failed 4.0.0", dsn("554", "DSN failed 4.0.0")},
		{"Z02", "DSN failed 5.4.4 X-Postfix; host 10.4.7.1 refused", dsn("512", "DSN failed 5.4.4 X-Postfix; host 10.4.7.1 refused")},
		// Neither: the send failed.
		{"Z02", "DSN failed", dsn("554", "DSN failed")},
		{"Z02", "DSN failed X-Postfix; connect to 10.5.2.2: timeout", dsn("554", "DSN failed X-Postfix; connect to 10.5.2.2: timeout")},
		{"Z02", "", dsn("554", "")},
		// MDNs.
		{"Z03", "MDN processed/error 902 Identifiant patient inconnu", mdn("902", "Identifiant patient inconnu")},
		{"Z03", "MDN processed/Error: 904^INS différent", mdn("904", "INS différent")},
		{"Z03", "MDN processed/error 906", mdn("906", "")},
		{"Z03", "MDN processed/error", mdn("", "MDN processed/error")},
	}
	for _, tt := range tests {
		t.Run(tt.event+" "+tt.detail, func(t *testing.T) {
			t.Parallel()
			got := failure(tt.event, " "+tt.detail+" ")
			require.NotNil(t, got)
			require.Equal(t, tt.want, *got)

			// The ZAM of it always has an ERR-5, the explanation in ERR-8 when it says more.
			z := hl7.ZAM{Event: tt.event, ControlID: "ZAM-1", Time: time.Now(), SendingApplication: hl7.HD{NamespaceID: "MSSDISPATCH"},
				ReceivingApplication: hl7.HD{NamespaceID: "DPI"}, OriginalControlID: "MSG-1", RecipientAddress: "a@medecin.mssante.fr",
				Error: got}
			m, err := hl7.BuildZAM(z)
			require.NoError(t, err)
			e := m.Segment("ERR")
			require.NotNil(t, e)
			require.Len(t, e.Component(5, 1), 3)
			require.NotEmpty(t, e.Component(5, 3))
			if got.Code != "" && hl7.ZAMErrorText(tt.event, got.Code) != "" {
				require.Equal(t, hl7.ZAMErrorText(tt.event, got.Code), e.Component(5, 2))
			}
		})
	}
}

// TestDSNStatusCodes checks that each row of dsnStatusCodes names a code of
// the volet's SMTPERRORCODE table and is reachable (no earlier row hides it).
func TestDSNStatusCodes(t *testing.T) {
	t.Parallel()
	for i, row := range dsnStatusCodes {
		require.NotEmpty(t, hl7.ZAMErrorText(hl7.ZAMDelivery, row.code), "row %s", row.status)
		status := row.status
		if strings.HasSuffix(status, ".") {
			status += "99"
			if strings.Count(status, ".") < 2 {
				status += ".99"
			}
		}
		require.Equal(t, row.code, smtpCodeForStatus(status), "row %d %s", i, row.status)
	}
	require.Empty(t, smtpCodeForStatus("2.0.0"), "not a failure")
}

func TestReadDPIAck(t *testing.T) {
	t.Parallel()
	const id = "ZAM-Z02-7"
	for _, tt := range []struct {
		name, resp string
		accepted   bool
		permanent  bool
		text       string // its String(), when read
		err        string
	}{
		{name: "AA", resp: "MSH|^~\\&|DPI|CH|MSSDISPATCH|CH|20240101||ACK^Z02^ACK|1|P|2.6\rMSA|AA|" + id, accepted: true, text: "AA"},
		{name: "CA", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|CA|" + id, accepted: true, text: "CA"},
		{name: "aa", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA| aa |" + id, accepted: true, text: "AA"},
		{name: "AE", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AE|" + id + "\rERR|||204^Unknown key identifier^HL70357|E",
			permanent: true, text: "AE 204"},
		{name: "AE with text", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AE|" + id + "|inconnu\rERR|||204^Unknown key identifier^HL70357|E||||ignoré",
			permanent: true, text: "AE 204 inconnu"},
		{name: "AE, ERR-8", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AE|" + id + "\rERR|||204^Unknown key identifier^HL70357|E||||inconnu",
			permanent: true, text: "AE 204 inconnu"},
		{name: "AR unsupported", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AR|" + id + "\rERR|||200^Unsupported message type^HL70357|E",
			permanent: true, text: "AR 200"},
		{name: "AR busy", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AR|" + id + "\rERR|||207^Application internal error^HL70357|E", text: "AR 207"},
		{name: "long text", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AE|" + id + "|" + strings.Repeat("é", 250) +
			"\rERR|||204^Unknown key identifier^HL70357|E", permanent: true, text: "AE 204 " + strings.Repeat("é", 200) + "…"},
		{name: "other message", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|AA|ZAM-Z02-8", err: "acknowledges"},
		{name: "no MSA", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6", err: "no MSA"},
		{name: "bad code", resp: "MSH|^~\\&|DPI|CH|||20240101||ACK|1|P|2.6\rMSA|OK|" + id, err: "MSA-1"},
		{name: "not HL7", resp: "OK", err: "not HL7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := readDPIAck([]byte(tt.resp), id)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.accepted, a.accepted())
			require.Equal(t, tt.permanent, a.permanent())
			require.Equal(t, tt.text, a.String())
		})
	}
}
