package paper

// Rect is a rectangle on a page, in millimetres from the top-left corner
// of the page.
type Rect struct{ X, Y, W, H float64 }

// Contains reports whether the rectangle o lies inside r.
func (r Rect) Contains(o Rect) bool {
	return o.X >= r.X && o.Y >= r.Y && o.X+o.W <= r.X+r.W && o.Y+o.H <= r.Y+r.H
}

// Inset returns r shrunk by m millimetres on each side.
func (r Rect) Inset(m float64) Rect {
	return Rect{X: r.X + m, Y: r.Y + m, W: r.W - 2*m, H: r.H - 2*m}
}

// Dimensions of the A4 page, in millimetres.
const (
	PageWidth  = 210.0
	PageHeight = 297.0
)

// FoldPanel is the height, in millimetres, of each of the three panels of
// an A4 letter folded in three to go into a DL envelope (letter fold):
// the page is folded at FoldPanel and 2*FoldPanel from its top, which
// fold marks in the left margin show.
const FoldPanel = 99.0

// WindowMargin is the space, in millimetres, Render leaves between the
// address block and each edge of Window: it absorbs the play of the
// folded letter in its envelope and an imprecise fold.
const WindowMargin = 5.0

// Window is the part of the A4 page that shows through the window of a DL
// window envelope when the page is folded in three.
//
// A DL envelope is 220 × 110 mm; its window, 100 × 45 mm, lies 20 mm from
// its right edge and 15 mm from its bottom edge: it spans 100 to 200 mm
// from the envelope's left edge and 110−15−45 = 50 to 95 mm from its top.
// The top panel of the folded letter (the first FoldPanel = 99 mm of the
// page) faces the window, its top edge against the envelope's top and its
// left edge against the envelope's left, so the window shows the page at
// X = 100 to 200 mm and Y = 50 to 95 mm. The letter can still move in the
// envelope (210 mm in 220, 99 mm in 110): Render prints the address block
// WindowMargin inside this rectangle, top-aligned, so that it also shows
// with the letter at the bottom of the envelope.
var Window = Rect{X: 100, Y: 50, W: 100, H: 45}
