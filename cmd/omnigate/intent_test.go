package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeCSV writes a CSV with header to a temporary file.
func writeCSV(t *testing.T, header string, rows [][2]string) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(header + "\n")
	w := csv.NewWriter(&b)
	for _, r := range rows {
		w.Write(r[:])
	}
	w.Flush()
	path := filepath.Join(t.TempDir(), "data.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// intentRows makes n rows of each of three intents, English and Chinese.
func intentRows(n int) [][2]string {
	tmpl := map[string][]string{
		"card_arrival": {"my card has not arrived after %d days", "where is the card I ordered %d days ago", "我的卡%d天了还没到"},
		"refund":       {"I want a refund for order %d", "please refund the %d dollars", "订单%d要退款"},
		"password":     {"I forgot my password, tried %d times", "reset my password, attempt %d", "密码忘了，试了%d次"},
	}
	var rows [][2]string
	for i := range n {
		for _, l := range []string{"card_arrival", "refund", "password"} {
			rows = append(rows, [2]string{fmt.Sprintf(tmpl[l][i%3], i+2), l})
		}
	}
	return rows
}

func runOut(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

var intentLast = regexp.MustCompile(`^accuracy=(0\.\d{4}|1\.0000) macro_f1=(0\.\d{4}|1\.0000) n=(\d+)$`)

func TestIntentCommands(t *testing.T) {
	data := writeCSV(t, "text,intent", append(intentRows(20), [2]string{"", "refund"}))
	modelPath := filepath.Join(t.TempDir(), "intent.omm")

	out, errOut, err := runOut(t, "intent", "train", data, "-o", modelPath, "--data", "generated for the test")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "60 rows, 3 intents") || !strings.Contains(errOut, "skipped 1 unreadable rows") {
		t.Errorf("train said %q, %q", out, errOut)
	}

	out, _, err = runOut(t, "intent", "eval", "--folds", "5", data)
	if err != nil {
		t.Fatal(err)
	}
	m := intentLast.FindStringSubmatch(lastLine(out))
	if m == nil || m[3] != "60" {
		t.Fatalf("cv last line %q", lastLine(out))
	}
	if m[1] < "0.9000" {
		t.Errorf("cv accuracy %s on separable data", m[1])
	}

	held := writeCSV(t, "text,label", [][2]string{{"my card still has not arrived", "card_arrival"}, {"refund order 7 please", "refund"}, {"密码忘了", "password"}, {"what is the weather", "small_talk"}})
	out, errOut, err = runOut(t, "intent", "eval", "--model", modelPath, held)
	if err != nil {
		t.Fatal(err)
	}
	if got := lastLine(out); got != "accuracy=0.7500 macro_f1=0.6667 n=4" {
		t.Errorf("held-out last line %q (stderr %q)", got, errOut)
	}
	if !strings.Contains(out, "small_talk -> ") {
		t.Errorf("no confusion of the unknown intent in\n%s", out)
	}

	out, _, err = runOut(t, "intent", "predict", "--model", modelPath, "--json", "I would like a refund")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Intent     string
		Confidence float64
		Top        []struct{ Intent string }
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Intent != "refund" || len(p.Top) != 3 {
		t.Errorf("predict: %v %+v", err, p)
	}
}

func TestIntentCommands_ShippedModel(t *testing.T) {
	out, _, err := runOut(t, "intent", "predict", "my card has not arrived yet")
	if err != nil || !strings.HasPrefix(out, "intent=card_arrival ") {
		t.Fatalf("predict: %v %q", err, out)
	}
	held := writeCSV(t, "text,category", [][2]string{
		{"I ordered a card last week and it is not here", "card_arrival"},
		{"my card got stolen yesterday", "lost_or_stolen_card"},
	})
	out, _, err = runOut(t, "intent", "eval", held)
	if err != nil || !intentLast.MatchString(lastLine(out)) {
		t.Fatalf("eval: %v %q", err, out)
	}
}

func TestIntentCommands_Usage(t *testing.T) {
	for _, args := range [][]string{{"intent"}, {"intent", "train", "x.csv"}, {"intent", "eval", "--folds", "5", "--model", "m", "x.csv"}, {"intent", "nope"}, {"sentiment", "eval"}} {
		if _, _, err := runOut(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, _, err := runOut(t, "intent", "eval", "--model", "/nonexistent.omm", writeCSV(t, "text,intent", intentRows(1))); err == nil {
		t.Error("a missing model: no error")
	}
}

var sentimentLast = regexp.MustCompile(`^precision=\d\.\d{3} recall=\d\.\d{3} f1=\d\.\d{3} n=(\d+)$`)

func TestSentimentCommands(t *testing.T) {
	var rows [][2]string
	neg := []string{"terrible service, I am angry", "awful, never again", "worst experience, so disappointed", "this is bad and slow", "太差了，很失望"}
	pos := []string{"great service, thank you", "lovely staff, very happy", "how do I change my address?", "what are your opening hours?", "很好，谢谢"}
	for i := range 12 {
		rows = append(rows, [2]string{fmt.Sprintf("%s (%d)", neg[i%5], i), "negative"}, [2]string{fmt.Sprintf("%s (%d)", pos[i%5], i), "positive"})
	}
	data := writeCSV(t, "text,label", rows)
	modelPath := filepath.Join(t.TempDir(), "s.omm")
	out, errOut, err := runOut(t, "sentiment", "train", data, "-o", modelPath, "--lang", "en")
	if err != nil || !strings.Contains(out, "24 rows (12 negative)") {
		t.Fatalf("train: %v %q %q", err, out, errOut)
	}
	held := writeCSV(t, "text,label", [][2]string{{"terrible and awful", "negative"}, {"so disappointed, bad", "negative"}, {"thank you, great", "positive"}, {"what are your hours", "neutral"}})
	out, _, err = runOut(t, "sentiment", "eval", "--model", modelPath, held)
	if err != nil {
		t.Fatal(err)
	}
	if got := lastLine(out); got != "precision=1.000 recall=1.000 f1=1.000 n=4" {
		t.Errorf("eval last line %q in\n%s", got, out)
	}
	out, _, err = runOut(t, "sentiment", "eval", "--lang", "zh", writeCSV(t, "text,label", [][2]string{{"太差了，再也不买了", "negative"}, {"请问怎么修改绑定的手机号？", "neutral"}}))
	if err != nil || !sentimentLast.MatchString(lastLine(out)) {
		t.Fatalf("shipped zh: %v %q", err, out)
	}
	if _, _, err := runOut(t, "sentiment", "train", writeCSV(t, "text,label", [][2]string{{"a", "positive"}, {"b", "positive"}}), "-o", modelPath); err == nil {
		t.Error("train without negative rows: no error")
	}
}

// export-corrections on a fresh embedded store writes the header only.
func TestIntentExportCorrections_Empty(t *testing.T) {
	out, errOut, err := runOut(t, "intent", "export-corrections", "--data", t.TempDir())
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	if out != "text,intent\n" || !strings.Contains(errOut, "0 intent corrections exported") {
		t.Errorf("out %q, stderr %q", out, errOut)
	}
}
