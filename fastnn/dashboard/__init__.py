"""A live web page for any training run: ``fit(..., callbacks=[Dashboard()])`` or
``fastnn train --dashboard``.

    from fastnn.dashboard import Dashboard
    model.fit(x, t, epochs=3, validation_data=(x_test, t_test), callbacks=[Dashboard(port=8000)])
    # open http://127.0.0.1:8000/

The page (``static/``: plain HTML, CSS and canvas JavaScript, nothing from the network)
shows the loss and accuracy per step and per epoch, the learning rate, each layer's
weight and gradient norms, the first layer's filters, the misclassified held-out samples,
the confusion matrix, the throughput and the time left. See docs/dashboard.md.
"""

from .callback import Dashboard

__all__ = ["Dashboard"]
