"""Live order tracking for web customers: capability links, the public view, and the WebSocket fan-out."""
