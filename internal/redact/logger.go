package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger is log for code that is not ours and logs texts from outside: River
// (the errors our jobs return: an SMTP reply echoing a patient's address, a
// DPI's ERR message), River's UI, net/http's error log (a panic's value).
// Every message, and every value but numbers, times and durations, goes
// through Text.
func Logger(log *slog.Logger) *slog.Logger { return slog.New(redacting{log.Handler()}) }

// redacting is a handler that redacts the messages and attributes of what it handles.
type redacting struct{ slog.Handler }

func (h redacting) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Text(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = redactAttr(a)
	}
	return redacting{h.Handler.WithAttrs(out)}
}

func (h redacting) WithGroup(name string) slog.Handler { return redacting{h.Handler.WithGroup(name)} }

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Text(v.String()))
	case slog.KindAny:
		return slog.String(a.Key, Text(fmt.Sprint(v.Any())))
	case slog.KindGroup:
		group := v.Group()
		out := make([]any, len(group))
		for i, g := range group {
			out[i] = redactAttr(g)
		}
		return slog.Group(a.Key, out...)
	}
	return slog.Attr{Key: a.Key, Value: v}
}
