"""What operators and the API's read side do with deliveries, beside the dispatcher rather than inside it: an
order's delivery history, an integrator's health report, a payload preview, and sending deliveries again. They
use the dispatcher's pieces (authentication headers, the queue); the dispatcher never imports them."""
