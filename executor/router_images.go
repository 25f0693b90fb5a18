package executor

import (
	"bytes"
	"encoding/base64"
	"image"
	_ "image/gif" // image.DecodeConfig of GIF data: URLs
	_ "image/jpeg"
	_ "image/png"
	"strings"

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
			if head := dataURLHead(img.URL); head != nil {
				if cfg, _, err := image.DecodeConfig(bytes.NewReader(head)); err == nil {
					in.w, in.h = cfg.Width, cfg.Height
				}
			}
			out = append(out, in)
		}
	}
	return out
}

// dataURLHead decodes the first bytes of a base64 data: URL, enough for
// image.DecodeConfig to read the size from the header (a JPEG's may follow
// tens of kilobytes of metadata); nil for any other URL. Pricing a picture
// then costs the same whatever its size.
func dataURLHead(url string) []byte {
	meta, payload, ok := strings.Cut(url, ",")
	if !ok || !strings.HasPrefix(meta, "data:") || !strings.HasSuffix(meta, ";base64") {
		return nil
	}
	const maxChars = 256 << 10 // 192 KiB decoded
	if len(payload) > maxChars {
		payload = payload[:maxChars] // a multiple of 4: whole base64 quanta
	}
	head, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	return head
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
