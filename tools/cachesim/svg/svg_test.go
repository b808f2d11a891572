package svg

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestWriteIsWellFormedXML(t *testing.T) {
	c := Chart{Title: "a <b> & c", XLabel: "x", YLabel: "y", Series: []Series{
		{Name: "line", X: []float64{0, 1, 2}, Y: []float64{1, 0.5, math.NaN()}},
		{Name: "pts", X: []float64{0, 2}, Y: []float64{0.2, 0.4}, Err: []float64{0.1, math.Inf(1)}, Points: true, Dashed: true, Color: 1},
	}}
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&buf)
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "circle" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d markers, want 2", n)
	}
	if !strings.Contains(c.Title, "&") {
		t.Fatal("test title lost its ampersand")
	}
}

func TestWriteRejects(t *testing.T) {
	var buf bytes.Buffer
	if err := (&Chart{Series: []Series{{X: []float64{1}, Y: nil}}}).Write(&buf); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if err := (&Chart{Series: []Series{{X: []float64{math.NaN()}, Y: []float64{1}}}}).Write(&buf); err == nil {
		t.Error("chart without finite points accepted")
	}
}

func TestTicks(t *testing.T) {
	got := ticks(0, 1)
	if len(got) < 3 || len(got) > 7 || got[0] != 0 || math.Abs(got[len(got)-1]-1) > 1e-9 {
		t.Errorf("ticks(0,1) = %v", got)
	}
}
