package stateful

// The stateful server's own routes, besides the library's (internal/api):
// sign-in and sign-out, and the cart the session holds. gorilla/mux
// templates; internal/client builds its requests from them.
const (
	LoginRoute     = "/api/auth/login"
	LogoutRoute    = "/api/auth/logout"
	CartRoute      = "/api/cart"
	CartItemsRoute = "/api/cart/items"
	CartItemRoute  = "/api/cart/items/{book_id}"
	CheckoutRoute  = "/api/cart/checkout"
)

// CartItem is one line of a cart.
type CartItem struct {
	BookID    int64  `json:"book_id"`
	Title     string `json:"title"`
	Author    string `json:"author"`
	Available bool   `json:"available"`
}

// Cart is the data of every cart route's answer: the books the session's
// cart holds, with their titles read from the shared store.
type Cart struct {
	Items []CartItem `json:"items"`
	Count int        `json:"count"`
}

// CartInput is the body of POST /api/cart/items.
type CartInput struct {
	BookID int64 `json:"book_id"`
}
