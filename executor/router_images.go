package executor

import (
	"bytes"
	"image"
	_ "image/gif" // image.DecodeConfig of GIF data: URLs
	_ "image/jpeg"
	_ "image/png"

	"github.com/costwise/costwise/estimator"
	"github.com/costwise/costwise/estimator/catalog"
	"github.com/costwise/costwise/estimator/tokens"
	"github.com/costwise/costwise/executor/provider"
)

// imageIn is a call's picture as it is priced: its size when the router
// can read it (a PNG, JPEG or GIF data: URL; 0 otherwise) and OpenAI's
// detail.
type imageIn struct {
	w, h   int
	detail tokens.Detail
}

// imagesOf lists the pictures of a conversation, in order.
func imagesOf(turns []provider.Turn) []imageIn {
	var out []imageIn
	for _, t := range turns {
		for _, img := range t.Images {
			in := imageIn{detail: tokens.Detail(img.Detail)}
			if _, data, ok := provider.DataURL(img.URL); ok {
				if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
					in.w, in.h = cfg.Width, cfg.Height
				}
			}
			out = append(out, in)
		}
	}
	return out
}

// unknownImageSizes are the sizes a picture of unknown size (a remote URL,
// a WebP) is priced at: the most the model's rule bills for any of them.
// Providers scale pictures down to about 2048 px on the long side (OpenAI)
// or about 1.15 megapixels (Anthropic), so these bound what one costs there;
// an extreme aspect ratio beyond 4:1 on Gemini's tiling may cost more.
var unknownImageSizes = [][2]int{{2048, 2048}, {768, 2048}, {2048, 768}, {1024, 4096}, {4096, 1024}}

// imageTokens is what model m bills for the pictures.
func imageTokens(m *catalog.Model, imgs []imageIn) (int64, error) {
	var n int64
	for _, im := range imgs {
		if im.w > 0 && im.h > 0 {
			t, err := estimator.ImageTokensFor(m, im.w, im.h, im.detail)
			if err != nil {
				return 0, err
			}
			n += int64(t)
			continue
		}
		worst := 0
		for _, s := range unknownImageSizes {
			t, err := estimator.ImageTokensFor(m, s[0], s[1], im.detail)
			if err != nil {
				return 0, err
			}
			worst = max(worst, t)
		}
		n += int64(worst)
	}
	return n, nil
}
