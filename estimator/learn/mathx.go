package learn

import (
	"cmp"
	"math"
	"slices"
)

// weighted is one value with its weight.
type weighted struct{ v, w float64 }

// quantile is the weighted p-quantile of xs: the smallest value whose
// cumulative weight reaches p of the total (0 for an empty or weightless
// slice). It sorts xs in place.
func quantile(xs []weighted, p float64) float64 {
	total := 0.0
	for _, x := range xs {
		total += x.w
	}
	if len(xs) == 0 || !(total > 0) {
		return 0
	}
	slices.SortFunc(xs, func(a, b weighted) int { return cmp.Compare(a.v, b.v) })
	target := p * total
	cum := 0.0
	for _, x := range xs {
		cum += x.w
		if cum >= target*(1-1e-12) {
			return x.v
		}
	}
	return xs[len(xs)-1].v
}

// betaQuantile is the p-quantile of Beta(a, b), found by bisection on the
// regularized incomplete beta function (60 halvings: below 1e-15).
func betaQuantile(p, a, b float64) float64 {
	lo, hi := 0.0, 1.0
	for range 60 {
		mid := (lo + hi) / 2
		if regIncBeta(mid, a, b) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// regIncBeta is I_x(a, b), the Beta(a, b) distribution function, by the
// continued fraction of the incomplete beta function evaluated with the
// modified Lentz method, using the symmetry I_x(a,b) = 1 - I_{1-x}(b,a)
// where the fraction converges slowly.
func regIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(x, a, b) / a
	}
	return 1 - front*betaCF(1-x, b, a)/b
}

func betaCF(x, a, b float64) float64 {
	const tiny = 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-14 {
			break
		}
	}
	return h
}
