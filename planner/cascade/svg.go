package cascade

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                       = 900, 560
	padLeft, padRight, padTop, padBott = 90, 230, 56, 70
)

// WriteSVG draws r's held-out cost-quality plane: one point per model, the
// strongest and best single models marked, the oracle, the fitted cascade
// and its curve over thresholds (Report.Curve), other policies
// (Report.Points, e.g. a prompt classifier) as triangles, and the target as
// a dashed line. Cost is on a log axis when it spans a factor of 10 or more.
func WriteSVG(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	type pt struct{ c, q float64 }
	var all []pt
	for _, m := range r.Models {
		all = append(all, pt{m.Test.CostUSD, m.Test.Quality})
	}
	all = append(all, pt{r.Oracle.CostUSD, r.Oracle.Quality}, pt{r.Cascade.CostUSD, r.Cascade.Quality})
	for _, c := range r.Curve {
		all = append(all, pt{c.Test.CostUSD, c.Test.Quality})
	}
	for _, p := range r.Points {
		all = append(all, pt{p.Test.CostUSD, p.Test.Quality})
	}
	minC, maxC, minQ, maxQ := math.Inf(1), math.Inf(-1), math.Min(r.Target, 1), math.Max(r.Target, 0)
	for _, p := range all {
		minC, maxC = math.Min(minC, p.c), math.Max(maxC, p.c)
		minQ, maxQ = math.Min(minQ, p.q), math.Max(maxQ, p.q)
	}
	logX := minC > 0 && maxC/minC >= 10
	var x0, x1 float64
	if logX {
		x0, x1 = math.Floor(math.Log10(minC)), math.Ceil(math.Log10(maxC))
		if x1 == x0 {
			x1++
		}
	} else {
		x0, x1 = 0, niceCeil(maxC)
	}
	y0 := math.Max(0, math.Floor((minQ-0.02)*20)/20)
	y1 := math.Min(1, math.Ceil((maxQ+0.02)*20)/20)
	if y1 <= y0 {
		y0, y1 = 0, 1
	}
	iw, ih := float64(plotW-padLeft-padRight), float64(plotH-padTop-padBott)
	X := func(c float64) float64 {
		v := c
		if logX {
			v = math.Log10(c)
		}
		return padLeft + (v-x0)/(x1-x0)*iw
	}
	Y := func(q float64) float64 { return padTop + (1-(q-y0)/(y1-y0))*ih }

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(bw, "<title>%s</title>\n", esc(fmt.Sprintf("costwise eval: held-out cost vs quality (%d test rows, %d training rows)", r.TestRows, r.TrainRows)))
	fmt.Fprintf(bw, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(bw, `<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, esc(fmt.Sprintf("Held-out cost vs quality (%d queries)", r.TestRows)))
	// Grid, ticks and axes.
	fmt.Fprintln(bw, `<g stroke="#ddd" stroke-width="1">`)
	ystep := 0.1
	if y1-y0 <= 0.3 {
		ystep = 0.05
	}
	var yticks []float64
	for v := math.Ceil(y0/ystep-1e-9) * ystep; v <= y1+1e-9; v += ystep {
		yticks = append(yticks, v)
		fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", f(padLeft), f(Y(v)), f(padLeft+iw), f(Y(v)))
	}
	var xticks []float64 // in axis units
	if logX {
		for e := x0; e <= x1+1e-9; e++ {
			xticks = append(xticks, e)
		}
	} else {
		step := x1 / 5
		for k := 0; k <= 5; k++ {
			xticks = append(xticks, float64(k)*step)
		}
	}
	xAt := func(v float64) float64 { return padLeft + (v-x0)/(x1-x0)*iw }
	for _, v := range xticks {
		fmt.Fprintf(bw, `<line x1="%s" y1="%d" x2="%s" y2="%s"/>`+"\n", f(xAt(v)), padTop, f(xAt(v)), f(padTop+ih))
	}
	fmt.Fprintln(bw, `</g>`)
	fmt.Fprintf(bw, `<g stroke="black" stroke-width="1.2"><line x1="%d" y1="%s" x2="%s" y2="%s"/><line x1="%d" y1="%d" x2="%d" y2="%s"/></g>`+"\n",
		padLeft, f(padTop+ih), f(padLeft+iw), f(padTop+ih), padLeft, padTop, padLeft, f(padTop+ih))
	for _, v := range yticks {
		fmt.Fprintf(bw, `<text x="%d" y="%s" text-anchor="end">%s</text>`+"\n", padLeft-6, f(Y(v)+4), strconv.FormatFloat(v, 'f', 2, 64))
	}
	for _, v := range xticks {
		label := "$" + strconv.FormatFloat(v, 'g', 3, 64)
		if logX {
			label = "$" + strconv.FormatFloat(math.Pow(10, v), 'g', 3, 64)
		}
		fmt.Fprintf(bw, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f(xAt(v)), f(padTop+ih+18), esc(label))
	}
	xlabel := "mean cost per query (USD)"
	if logX {
		xlabel = "mean cost per query (USD, log scale)"
	}
	fmt.Fprintf(bw, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", f(padLeft+iw/2), plotH-20, esc(xlabel))
	fmt.Fprintf(bw, `<text x="22" y="%s" text-anchor="middle" transform="rotate(-90 22 %s)">mean quality per query (held-out)</text>`+"\n", f(padTop+ih/2), f(padTop+ih/2))
	// Target.
	if r.Target >= y0 && r.Target <= y1 {
		fmt.Fprintf(bw, `<line x1="%d" y1="%s" x2="%s" y2="%s" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", padLeft, f(Y(r.Target)), f(padLeft+iw), f(Y(r.Target)))
		fmt.Fprintf(bw, `<text x="%s" y="%s" fill="#c00" text-anchor="end">%s</text>`+"\n", f(padLeft+iw-4), f(Y(r.Target)-4), esc(fmt.Sprintf("target %.3f", r.Target)))
	}
	// Cascade curve.
	if len(r.Curve) > 0 {
		var b strings.Builder
		for i, c := range r.Curve {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(f(X(c.Test.CostUSD)) + "," + f(Y(c.Test.Quality)))
		}
		fmt.Fprintf(bw, `<polyline points="%s" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`+"\n", b.String())
		for _, c := range r.Curve {
			fmt.Fprintf(bw, `<circle cx="%s" cy="%s" r="1.8" fill="#1f77b4"><title>%s</title></circle>`+"\n", f(X(c.Test.CostUSD)), f(Y(c.Test.Quality)),
				esc(fmt.Sprintf("thresholds %v: quality %.4f, $%.3g", fmtThr(c.Thresholds), c.Test.Quality, c.Test.CostUSD)))
		}
	}
	// Models.
	for _, m := range r.Models {
		fill := "#555"
		switch m.Model {
		case r.Strongest.Model:
			fill = "#d62728"
		case r.BestSingle.Model:
			fill = "#ff7f0e"
		}
		cx, cy := X(m.Test.CostUSD), Y(m.Test.Quality)
		fmt.Fprintf(bw, `<circle cx="%s" cy="%s" r="4.5" fill="%s"><title>%s</title></circle>`+"\n", f(cx), f(cy), fill,
			esc(fmt.Sprintf("%s: quality %.4f, $%.3g per query", m.Model, m.Test.Quality, m.Test.CostUSD)))
		fmt.Fprintf(bw, `<text x="%s" y="%s">%s</text>`+"\n", f(cx+7), f(cy-6), esc(m.Model))
	}
	// Oracle and the fitted cascade.
	ox, oy := X(r.Oracle.CostUSD), Y(r.Oracle.Quality)
	fmt.Fprintf(bw, `<path d="M %s %s l 6 6 l -6 6 l -6 -6 z" fill="#2ca02c"><title>%s</title></path>`+"\n", f(ox), f(oy-6),
		esc(fmt.Sprintf("oracle: quality %.4f, $%.3g per query", r.Oracle.Quality, r.Oracle.CostUSD)))
	fmt.Fprintf(bw, `<text x="%s" y="%s" fill="#2ca02c">oracle</text>`+"\n", f(ox+8), f(oy+4))
	cx, cy := X(r.Cascade.CostUSD), Y(r.Cascade.Quality)
	fmt.Fprintf(bw, `<rect x="%s" y="%s" width="10" height="10" fill="#1f77b4" stroke="black"><title>%s</title></rect>`+"\n", f(cx-5), f(cy-5),
		esc(fmt.Sprintf("fitted %s: quality %.4f, $%.3g per query", r.Fit.Policy, r.Cascade.Quality, r.Cascade.CostUSD)))
	fmt.Fprintf(bw, `<text x="%s" y="%s" fill="#1f77b4" font-weight="bold">fitted</text>`+"\n", f(cx+8), f(cy+14))
	// Other policies (a prompt classifier, say): purple triangles.
	for _, p := range r.Points {
		px, py := X(p.Test.CostUSD), Y(p.Test.Quality)
		title := p.Title
		if title == "" {
			title = p.Label
		}
		fmt.Fprintf(bw, `<path d="M %s %s l 6 10 l -12 0 z" fill="#9467bd" stroke="black" stroke-width="0.5"><title>%s</title></path>`+"\n", f(px), f(py-6),
			esc(fmt.Sprintf("%s: quality %.4f, $%.3g per query", title, p.Test.Quality, p.Test.CostUSD)))
		fmt.Fprintf(bw, `<text x="%s" y="%s" fill="#9467bd">%s</text>`+"\n", f(px+8), f(py-6), esc(clipLabel(p.Label)))
	}
	// Legend.
	lx, ly := float64(plotW-padRight+20), float64(padTop+10)
	legend := []struct{ color, shape, text string }{
		{"#555", "circle", "single model"},
		{"#d62728", "circle", "strongest (train): " + r.Strongest.Model},
		{"#ff7f0e", "circle", "best single (train): " + r.BestSingle.Model},
		{"#2ca02c", "diamond", "oracle"},
		{"#1f77b4", "square", "fitted " + r.Fit.Policy.Kind()},
		{"#1f77b4", "line", "cascade over thresholds"},
		{"#c00", "dash", "quality target"},
	}
	for _, p := range r.Points {
		legend = append(legend, struct{ color, shape, text string }{"#9467bd", "triangle", p.Label})
	}
	for i, l := range legend {
		y := ly + float64(i)*20
		switch l.shape {
		case "circle":
			fmt.Fprintf(bw, `<circle cx="%s" cy="%s" r="4.5" fill="%s"/>`, f(lx), f(y), l.color)
		case "diamond":
			fmt.Fprintf(bw, `<path d="M %s %s l 5 5 l -5 5 l -5 -5 z" fill="%s"/>`, f(lx), f(y-5), l.color)
		case "square":
			fmt.Fprintf(bw, `<rect x="%s" y="%s" width="9" height="9" fill="%s" stroke="black"/>`, f(lx-4.5), f(y-4.5), l.color)
		case "line":
			fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5"/>`, f(lx-8), f(y), f(lx+8), f(y), l.color)
		case "triangle":
			fmt.Fprintf(bw, `<path d="M %s %s l 5 9 l -10 0 z" fill="%s" stroke="black" stroke-width="0.5"/>`, f(lx), f(y-5), l.color)
		case "dash":
			fmt.Fprintf(bw, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/>`, f(lx-8), f(y), f(lx+8), f(y), l.color)
		}
		fmt.Fprintf(bw, `<text x="%s" y="%s">%s</text>`+"\n", f(lx+14), f(y+4), esc(clipLabel(l.text)))
	}
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

func fmtThr(t []float64) string {
	parts := make([]string, len(t))
	for i, v := range t {
		parts[i] = strconv.FormatFloat(v, 'g', 4, 64)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func clipLabel(s string) string {
	if len(s) > 34 {
		return s[:31] + "..."
	}
	return s
}

// f formats a coordinate with two decimals.
func f(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
