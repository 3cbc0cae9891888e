package model

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/omnigate/omnigate/insight/linear"
	"github.com/omnigate/omnigate/insight/textfeat"
)

// The file: the magic, the header's length (uvarint) and the header as
// JSON, then a gzip stream of the body: the feature count V and label count
// K (uvarints), V feature hashes (uvarint deltas), V IDF weights (float32),
// V rows of a scale (float32) and K weights (int8, times the scale), and K
// biases (float32). Weights are quantized to 8 bits per feature row: the
// file is a quarter of float32's, and predictions do not change measurably.
const magic = "OMNIMDL\x01"

// Bounds of what Decode accepts.
const (
	maxHeader   = 1 << 20
	maxFeatures = 1 << 23
	maxLabels   = 4096
	maxWeights  = 1 << 28
	// maxBody bounds the decompressed body: hashes, IDF, scales, weights.
	maxBody = maxFeatures*(10+4+4) + maxWeights + maxLabels*4 + 32
)

// ErrFormat is wrapped by Decode's errors about a file that is not a model
// or is damaged.
var ErrFormat = errors.New("model: not an omnigate model file")

// Encode writes c to w.
func (c *Classifier) Encode(w io.Writer) error {
	h := c.Header
	h.Format = FormatVersion
	h.Temperature = c.lin.Temperature
	hj, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(magic)
	bw.Write(binary.AppendUvarint(nil, uint64(len(hj))))
	bw.Write(hj)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return err
	}
	v, k := c.vocab.Len(), c.lin.K
	buf := binary.AppendUvarint(nil, uint64(v))
	buf = binary.AppendUvarint(buf, uint64(k))
	prev := uint64(0)
	for _, hs := range c.vocab.Hashes {
		buf = binary.AppendUvarint(buf, hs-prev)
		prev = hs
	}
	for _, x := range c.vocab.IDF {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
	}
	for f := range v {
		row := c.lin.W[f*k : f*k+k]
		mx := float32(0)
		for _, x := range row {
			mx = max(mx, float32(math.Abs(float64(x))))
		}
		scale := mx / 127
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(scale))
		for _, x := range row {
			q := int8(0)
			if scale > 0 {
				q = int8(math.Round(float64(x / scale)))
			}
			buf = append(buf, byte(q))
		}
		if len(buf) > 1<<16 {
			if _, err := zw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	for _, b := range c.lin.B {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(b))
	}
	if _, err := zw.Write(buf); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// Save writes c to path atomically (a temporary file renamed over it), so
// that a process reloading the model never reads half a file.
func (c *Classifier) Save(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*")
	if err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := c.Encode(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("model: save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("model: save %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("model: save: %w", err)
	}
	return nil
}

// Load reads the model file at path.
func Load(path string) (*Classifier, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	c, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode reads a model written by Encode. A damaged or foreign file gives an
// error wrapping ErrFormat; a newer format says so.
func Decode(r io.Reader) (*Classifier, error) {
	br := bufio.NewReader(r)
	var mg [len(magic)]byte
	if _, err := io.ReadFull(br, mg[:]); err != nil || string(mg[:]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxHeader {
		return nil, fmt.Errorf("%w: bad header length", ErrFormat)
	}
	hj := make([]byte, n)
	if _, err := io.ReadFull(br, hj); err != nil {
		return nil, fmt.Errorf("%w: short header", ErrFormat)
	}
	var h Header
	if err := json.Unmarshal(hj, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if h.Format != FormatVersion {
		return nil, fmt.Errorf("model: file format %d, this omnigate reads %d: retrain the model with this version's train command", h.Format, FormatVersion)
	}
	if err := h.Features.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if t := h.Temperature; !(t > 0 && t < 1e4) {
		return nil, fmt.Errorf("%w: temperature %v", ErrFormat, t)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrFormat, err)
	}
	// The body is read whole (bounded by what the largest allowed model
	// takes), then parsed from memory.
	raw, err := io.ReadAll(io.LimitReader(zr, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrFormat, err)
	}
	if len(raw) > maxBody {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrFormat, maxBody)
	}
	body := bytes.NewReader(raw)
	v, err1 := binary.ReadUvarint(body)
	k, err2 := binary.ReadUvarint(body)
	switch {
	case err1 != nil || err2 != nil:
		return nil, fmt.Errorf("%w: short body", ErrFormat)
	case v > maxFeatures || k < 2 || k > maxLabels || v*k > maxWeights:
		return nil, fmt.Errorf("%w: %d features x %d labels", ErrFormat, v, k)
	case int(k) != len(h.Labels):
		return nil, fmt.Errorf("%w: %d weight columns for %d labels", ErrFormat, k, len(h.Labels))
	}
	// Slices grow as data arrives, so a header that lies about its sizes
	// cannot make Decode allocate more than the file holds.
	if v*(4+k) > uint64(len(raw)) {
		return nil, fmt.Errorf("%w: %d features x %d labels in %d bytes", ErrFormat, v, k, len(raw))
	}
	hashes := make([]uint64, 0, v)
	prev := uint64(0)
	for i := uint64(0); i < v; i++ {
		d, err := binary.ReadUvarint(body)
		if err != nil {
			return nil, fmt.Errorf("%w: short features", ErrFormat)
		}
		prev += d
		hashes = append(hashes, prev)
	}
	idf, err := readFloats(body, v)
	if err != nil {
		return nil, err
	}
	off := uint64(len(raw) - body.Len())
	if uint64(len(raw))-off < v*(4+k) {
		return nil, fmt.Errorf("%w: short weights", ErrFormat)
	}
	w := make([]float32, 0, v*k)
	for range v {
		row := raw[off : off+4+k]
		off += 4 + k
		scale := math.Float32frombits(binary.LittleEndian.Uint32(row))
		if !finite(scale) {
			return nil, fmt.Errorf("%w: weight scale %v", ErrFormat, scale)
		}
		for _, q := range row[4:] {
			w = append(w, float32(int8(q))*scale)
		}
	}
	body.Seek(int64(off), io.SeekStart)
	bias, err := readFloats(body, k)
	if err != nil {
		return nil, err
	}
	if body.Len() != 0 {
		return nil, fmt.Errorf("%w: data after the weights", ErrFormat)
	}
	vocab, err := textfeat.NewVocabulary(h.Features, hashes, idf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return &Classifier{Header: h, vocab: vocab, lin: &linear.Model{K: int(k), Dim: int(v), W: w, B: bias, Temperature: h.Temperature}}, nil
}

func readFloats(r io.Reader, n uint64) ([]float32, error) {
	out := make([]float32, 0, min(n, 1<<16))
	var b [4]byte
	for range n {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%w: short data", ErrFormat)
		}
		x := math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		if !finite(x) {
			return nil, fmt.Errorf("%w: weight %v", ErrFormat, x)
		}
		out = append(out, x)
	}
	return out, nil
}

func finite(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }

// Bytes encodes c into memory.
func (c *Classifier) Bytes() ([]byte, error) {
	var b bytes.Buffer
	err := c.Encode(&b)
	return b.Bytes(), err
}
