// An error to show beside the control it concerns, in words a learner understands: the
// server's (its message names the field and the limit), or the page's own check of an input.

export class ApiError extends Error {
  constructor(message, field, loc = null) {
    super(message);
    this.field = field; // which control it concerns: input, weights, loss, run
    this.loc = loc;     // the server's loc of the first error, when it sent one
  }
}
