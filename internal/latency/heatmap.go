package latency

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Panel is one matrix of a heatmap.
type Panel struct {
	Title string
	Names []string // row and column order
	Cells []Cell
}

const (
	cellW, cellH = 118, 34
	labelW       = 130
	margin       = 12
)

// Heatmap draws the panels side by side as a PNG: one cell per pair, coloured by p50
// from green (50 µs or less) to red (20 ms or more) on a log scale, dark grey for a pair
// that lost every probe; each cell prints p50, and p99 or the loss. Text is ASCII (the
// built-in bitmap font has nothing else).
func Heatmap(w io.Writer, title string, panels []Panel) error {
	width, height := margin, 0
	for _, p := range panels {
		width += labelW + len(p.Names)*cellW + margin
		height = max(height, 3*cellH+len(p.Names)*cellH+margin)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height+cellH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, margin, 20, title, color.Black)
	x0 := margin
	for _, p := range panels {
		drawPanel(img, x0, cellH+4, p)
		x0 += labelW + len(p.Names)*cellW + margin
	}
	return png.Encode(w, img)
}

func drawPanel(img *image.RGBA, x0, y0 int, p Panel) {
	text(img, x0, y0+14, p.Title+" (row -> column)", color.Black)
	y0 += cellH / 2
	byPair := map[[2]string]Cell{}
	for _, c := range p.Cells {
		byPair[[2]string{c.From, c.To}] = c
	}
	for j, n := range p.Names {
		text(img, x0+labelW+j*cellW+4, y0+cellH-8, short(n), color.Black)
	}
	for i, from := range p.Names {
		y := y0 + (i+1)*cellH
		text(img, x0, y+cellH/2+4, short(from), color.Black)
		for j, to := range p.Names {
			x := x0 + labelW + j*cellW
			r := image.Rect(x+1, y+1, x+cellW-1, y+cellH-1)
			if from == to {
				draw.Draw(img, r, image.NewUniform(color.RGBA{235, 235, 235, 255}), image.Point{}, draw.Src)
				continue
			}
			c, ok := byPair[[2]string{from, to}]
			switch {
			case !ok:
				draw.Draw(img, r, image.NewUniform(color.RGBA{235, 235, 235, 255}), image.Point{}, draw.Src)
			case c.Stats.Received == 0:
				draw.Draw(img, r, image.NewUniform(color.RGBA{90, 90, 90, 255}), image.Point{}, draw.Src)
				text(img, x+6, y+21, "LOST (100%)", color.White)
			default:
				draw.Draw(img, r, image.NewUniform(scale(c.Stats.P50)), image.Point{}, draw.Src)
				text(img, x+4, y+14, "p50 "+ms(c.Stats.P50), color.Black)
				line := "p99 " + ms(c.Stats.P99)
				if c.Stats.Loss > 0 {
					line = fmt.Sprintf("%.0f%% lost", c.Stats.Loss)
				}
				text(img, x+4, y+28, line, color.Black)
			}
		}
	}
}

// Colour scale: logarithmic from green at scaleLo to red at scaleHi, so cells compare
// across runs and panels (a LAN is green, 20 ms between nodes is red).
const (
	scaleLo = 50 * time.Microsecond
	scaleHi = 20 * time.Millisecond
)

// scale maps d onto green, yellow, red.
func scale(d time.Duration) color.Color {
	f := 0.0
	if d > scaleLo {
		f = math.Log(float64(d)/float64(scaleLo)) / math.Log(float64(scaleHi)/float64(scaleLo))
	}
	f = min(f, 1)
	if f < 0.5 {
		return color.RGBA{uint8(120 + 270*f), 220, 120, 255}
	}
	return color.RGBA{255, uint8(220 - 260*(f-0.5)), 120, 255}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func short(s string) string {
	if len(s) > 18 {
		return s[:16] + ".."
	}
	return s
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
