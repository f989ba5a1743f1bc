// Nimbus demo site: the few explicit calls a site owner adds beside autocapture
// (identify + group at signup, an order with its revenue at checkout).
(function () {
  var autocap = (window.autocap = window.autocap || []);
  var cart = JSON.parse(localStorage.getItem("nimbus_cart") || "[]");
  function save() { localStorage.setItem("nimbus_cart", JSON.stringify(cart)); }
  var add = document.getElementById("add-to-cart");
  if (add) add.addEventListener("click", function () {
    cart.push({ product: add.dataset.product, price: Number(add.dataset.price) });
    save();
    location.href = "/cart";
  });
  var items = document.getElementById("cart-items");
  if (items) cart.forEach(function (item) {
    var li = document.createElement("li");
    li.textContent = item.product + " · €" + item.price;
    items.appendChild(li);
  });
  var demo = document.getElementById("request-demo");
  if (demo) demo.addEventListener("click", function () {
    document.getElementById("demo-form").hidden = false;
  });
  var signup = document.getElementById("signup-form");
  if (signup) signup.addEventListener("submit", function () {
    var email = document.getElementById("signup-email").value;
    var company = document.getElementById("signup-company").value;
    var domain = email.split("@")[1] || company.toLowerCase();
    autocap.identify(email, { email: email, role: document.getElementById("signup-role").value });
    autocap.group(domain, { name: company });
  });
  var checkout = document.getElementById("checkout-form");
  if (checkout) checkout.addEventListener("submit", function () {
    var revenue = cart.reduce(function (sum, item) { return sum + item.price; }, 0);
    autocap.track("Order Completed", { revenue: revenue, currency: "EUR", items: cart.length });
    cart = [];
    save();
  });
})();
