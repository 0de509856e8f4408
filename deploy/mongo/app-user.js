// Creates the user Holdfast's services connect as: read and write on Holdfast's own databases
// (`holdfast_<service>`), nothing else on the server; the root user stays the operator's.
// The mongo image runs this once, when its data volume is new.
const password = process.env.MONGO_APP_PASSWORD;
if (!password) {
  throw new Error("MONGO_APP_PASSWORD is not set");
}
db.getSiblingDB("admin").createUser({
  user: "holdfast_app",
  pwd: password,
  roles: ["auth", "events", "orders", "notifications"].map((service) => ({
    role: "readWrite",
    db: `holdfast_${service}`,
  })),
});
