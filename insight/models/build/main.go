// Command build turns the public corpora in ../shared/datasets into the CSV
// files omnigate's train and eval commands read, and can train the models
// shipped in insight/models from them:
//
//	go run ./insight/models/build -data ../shared/datasets -csv /tmp/corpora
//	go run ./insight/models/build -data ../shared/datasets -csv /tmp/corpora -models insight/models
//
// The CSVs are not committed (the TweetEval tweets may not be redistributed);
// this command makes them again from the original files.
package main

import (
	"archive/zip"
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/omnigate/omnigate/insight/corpus"
	"github.com/omnigate/omnigate/insight/intent"
	"github.com/omnigate/omnigate/insight/model"
	"github.com/omnigate/omnigate/insight/sentiment"
)

// Attributions kept in the model files and in insight/models/README.md.
const (
	dataBanking = "Banking77 (Casanueva et al. 2020, PolyAI-LDN/task-specific-datasets), CC BY 4.0"
	dataEN      = "omnigate's own labelled customer-service messages (routing/testdata); UCI Sentiment Labelled Sentences (Kotzias et al. KDD 2015), CC BY 4.0; TweetEval sentiment validation split (Barbieri et al. 2020, cardiffnlp/tweeteval); Banking77 texts as neutral questions (Casanueva et al. 2020), CC BY 4.0"
	dataZH      = "omnigate's own labelled customer-service messages (routing/testdata); online_shopping_10_cats and ChnSentiCorp hotel reviews (Tan Songbo), via SophonPlus/ChineseNlpCorpus, research corpora"
)

func main() {
	data := flag.String("data", "../shared/datasets", "`DIR` with the original corpora")
	csvDir := flag.String("csv", "", "write the CSVs to `DIR`")
	models := flag.String("models", "", "train the shipped models into `DIR` (needs -csv)")
	repo := flag.String("repo", ".", "`DIR` of the omnigate repository (for routing/testdata)")
	flag.Parse()
	if *csvDir == "" {
		log.Fatal("build: -csv DIR is required")
	}
	if err := os.MkdirAll(*csvDir, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := writeCSVs(*data, *repo, *csvDir); err != nil {
		log.Fatal(err)
	}
	if *models != "" {
		if err := train(*data, *csvDir, *models); err != nil {
			log.Fatal(err)
		}
	}
}

// writeCSVs writes one text,label CSV per source, and the sets the shipped
// models train on.
func writeCSVs(data, repo, out string) error {
	in := func(name string) string { return filepath.Join(data, name) }
	var en []corpus.Row
	for _, src := range []string{"amazon_cells", "yelp", "imdb"} {
		rows, err := readUCI(in("uci_" + src + "_labelled.txt"))
		if err != nil {
			return err
		}
		if err := writeCSV(filepath.Join(out, "en_uci_"+src+".csv"), rows); err != nil {
			return err
		}
		en = append(en, rows...)
	}
	tweets, err := readTweetEval(in("tweeteval_sentiment_val_text.txt"), in("tweeteval_sentiment_val_labels.txt"))
	if err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(out, "en_tweeteval.csv"), tweets); err != nil {
		return err
	}
	en = append(en, tweets...)
	bank, err := corpus.ReadFile(in("banking77_train.csv"))
	if err != nil {
		return err
	}
	// Banking77 questions as neutral text, split in two halves: one is
	// trained on, the other measures false alarms on neutral questions.
	rng := rand.New(rand.NewPCG(77, 1))
	var neutralTrain, neutralTest []corpus.Row
	for _, r := range bank.Rows {
		row := corpus.Row{Text: r.Text, Label: "neutral"}
		if rng.IntN(2) == 0 {
			neutralTrain = append(neutralTrain, row)
		} else {
			neutralTest = append(neutralTest, row)
		}
	}
	if err := writeCSV(filepath.Join(out, "en_banking_neutral_train.csv"), neutralTrain); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(out, "en_banking_neutral_test.csv"), neutralTest); err != nil {
		return err
	}
	// omnigate's own customer-service messages (routing/testdata), labelled
	// for escalation: the complaints and neutral requests the public corpora
	// lack. The blind set stays out, to measure on.
	desk := map[string][]corpus.Row{}
	for _, name := range []string{"sentiment.tsv", "sentiment_holdout.tsv"} {
		if err := readDesk(filepath.Join(repo, "routing", "testdata", name), desk); err != nil {
			return err
		}
	}
	blind := map[string][]corpus.Row{}
	if err := readDesk(filepath.Join(repo, "routing", "testdata", "sentiment_blind.tsv"), blind); err != nil {
		return err
	}
	for _, lang := range []string{"en", "zh"} {
		if err := writeCSV(filepath.Join(out, lang+"_desk_blind.csv"), blind[lang]); err != nil {
			return err
		}
	}
	if err := writeCSV(filepath.Join(out, "en_train.csv"), slices.Concat(en, neutralTrain, desk["en"])); err != nil {
		return err
	}

	hotels, err := corpus.ReadFile(in("chnsenticorp_htl_all.csv"))
	if err != nil {
		return err
	}
	zhHotels := relabel(hotels.Rows)
	if err := writeCSV(filepath.Join(out, "zh_chnsenticorp_hotels.csv"), zhHotels); err != nil {
		return err
	}
	shop, err := readShopping(in("online_shopping_10_cats.zip"))
	if err != nil {
		return err
	}
	var shopNoHotel []corpus.Row
	var shopAll []corpus.Row
	for _, r := range shop {
		shopAll = append(shopAll, r.row)
		if r.cat != "酒店" {
			shopNoHotel = append(shopNoHotel, r.row)
		}
	}
	if err := writeCSV(filepath.Join(out, "zh_shopping.csv"), shopAll); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(out, "zh_shopping_no_hotels.csv"), shopNoHotel); err != nil {
		return err
	}
	// Neutral questions weigh little against 70,000 reviews: each counts 20
	// times.
	neutral := slices.Concat(zhNeutral(600, 1), desk["zh"])
	var zh []corpus.Row
	zh = slices.Concat(shopAll, zhHotels)
	for range 20 {
		zh = append(zh, neutral...)
	}
	return writeCSV(filepath.Join(out, "zh_train.csv"), zh)
}

// readDesk reads routing's labelled escalation samples (label, language,
// text; 1 escalates) into rows by language: negative or neutral.
func readDesk(path string, into map[string][]corpus.Row) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, "\t", 3)
		if len(parts) != 3 || strings.HasPrefix(line, "#") {
			continue
		}
		label := "neutral"
		if parts[0] == "1" {
			label = sentiment.Negative
		}
		into[parts[1]] = append(into[parts[1]], corpus.Row{Text: parts[2], Label: label})
	}
	return nil
}

// relabel turns 0/1 labels into negative/positive.
func relabel(rows []corpus.Row) []corpus.Row {
	out := make([]corpus.Row, 0, len(rows))
	for _, r := range rows {
		switch r.Label {
		case "0":
			out = append(out, corpus.Row{Text: r.Text, Label: sentiment.Negative})
		case "1":
			out = append(out, corpus.Row{Text: r.Text, Label: "positive"})
		}
	}
	return out
}

func readUCI(path string) ([]corpus.Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []corpus.Row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text, label, ok := strings.Cut(strings.TrimSpace(sc.Text()), "\t")
		if !ok {
			continue
		}
		rows = append(rows, relabel([]corpus.Row{{Text: strings.TrimSpace(text), Label: strings.TrimSpace(label)}})...)
	}
	return rows, sc.Err()
}

func readTweetEval(textPath, labelPath string) ([]corpus.Row, error) {
	texts, err := lines(textPath)
	if err != nil {
		return nil, err
	}
	labels, err := lines(labelPath)
	if err != nil {
		return nil, err
	}
	if len(texts) != len(labels) {
		return nil, fmt.Errorf("tweeteval: %d texts, %d labels", len(texts), len(labels))
	}
	names := map[string]string{"0": sentiment.Negative, "1": "neutral", "2": "positive"}
	var rows []corpus.Row
	for i, t := range texts {
		if l, ok := names[strings.TrimSpace(labels[i])]; ok && strings.TrimSpace(t) != "" {
			rows = append(rows, corpus.Row{Text: strings.TrimSpace(t), Label: l})
		}
	}
	return rows, nil
}

func lines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
}

type shopRow struct {
	cat string
	row corpus.Row
}

func readShopping(path string) ([]shopRow, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".csv") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		cr := csv.NewReader(rc)
		cr.FieldsPerRecord = -1
		cr.LazyQuotes = true
		var out []shopRow
		for n := 0; ; n++ {
			rec, err := cr.Read()
			if err == io.EOF {
				return out, nil
			}
			if err != nil || n == 0 || len(rec) < 3 {
				continue
			}
			rs := relabel([]corpus.Row{{Text: strings.TrimSpace(rec[2]), Label: rec[1]}})
			if len(rs) == 1 && rs[0].Text != "" {
				out = append(out, shopRow{cat: rec[0], row: rs[0]})
			}
		}
	}
	return nil, fmt.Errorf("%s: no CSV inside", path)
}

func writeCSV(path string, rows []corpus.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"text", "label"})
	for _, r := range rows {
		w.Write([]string{r.Text, r.Label})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// train trains the shipped models from the CSVs.
func train(data, csvDir, out string) error {
	read := func(name string) ([]corpus.Row, error) {
		res, err := corpus.ReadFile(filepath.Join(csvDir, name))
		return res.Rows, err
	}
	bank, err := corpus.ReadFile(filepath.Join(data, "banking77_train.csv"))
	if err != nil {
		return err
	}
	start := time.Now()
	im, err := intent.Train(bank.Rows, dataBanking, model.Options{})
	if err != nil {
		return err
	}
	log.Printf("intent: %d rows, %d features, trained in %s", len(bank.Rows), im.Classifier().Features(), time.Since(start).Round(time.Millisecond))
	if err := im.Classifier().Save(filepath.Join(out, "intent.omm")); err != nil {
		return err
	}
	// Thresholds: where precision and recall balance on the desk messages
	// held out (docs/models.md).
	for _, s := range []struct {
		lang, file, data string
		threshold        float64
	}{{"en", "en_train.csv", dataEN, 0.5}, {"zh", "zh_train.csv", dataZH, 0.7}} {
		rows, err := read(s.file)
		if err != nil {
			return err
		}
		start := time.Now()
		m, err := sentiment.Train(rows, s.lang, s.data, model.Options{Balanced: true})
		if err != nil {
			return err
		}
		m.SetThreshold(s.threshold)
		log.Printf("sentiment %s: %d rows, %d features, trained in %s", s.lang, len(rows), m.Classifier().Features(), time.Since(start).Round(time.Millisecond))
		if err := m.Classifier().Save(filepath.Join(out, "sentiment_"+s.lang+".omm")); err != nil {
			return err
		}
	}
	return nil
}
