"""DIET that loads in seconds instead of half a minute, with identical predictions.

Rasa rebuilds a model's weights at load time by fitting it on one example. In graph mode that
traces the whole training step, and for DIET's CRF entity loss the trace alone takes ~20 s on
this machine: most of the model's load time, paid by every Rasa process at start. Fitting that
one example eagerly builds the same weights without tracing; the trained weights are then loaded
and prediction runs in graph mode as usual (traced once, on the warm-up example).

The mixin is model-agnostic: TEDPolicy loaded through it too, until TED left config.yml
(2026-12-05: it learned nothing from three stories); a ``FastLoadTEDPolicy`` is three lines
over it (see the history of this file).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIET, DIETClassifier
from rasa.utils.tensorflow.constants import LEARNING_RATE
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData


class _EagerBuildMixin:
    """Overrides ``RasaModel.load``: build eagerly, then predict in graph mode."""

    @classmethod
    def load(
        cls,
        model_file_name: str,
        model_data_example: RasaModelData,
        predict_data_example: RasaModelData | None = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if finetune_mode:
            # Fine-tuning trains on; keep Rasa's own path for it.
            return super().load(  # type: ignore[misc]
                model_file_name,
                model_data_example,
                predict_data_example,
                finetune_mode,
                *args,
                **kwargs,
            )
        model: Any = cls(*args, **kwargs)
        learning_rate = kwargs.get("config", {}).get(LEARNING_RATE, 0.001)
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), run_eagerly=True)
        model.fit(RasaBatchDataGenerator(model_data_example, batch_size=1), verbose=False)
        # The eager fit creates the optimizer's slot variables in another order than training
        # did, and the checkpoint restores them by position: for TED a slot's shape clashed and
        # load_weights raised, which Rasa's TEDPolicy.load swallows (the policy then predicted
        # nothing). Prediction needs no optimizer state: a fresh optimizer has no slots,
        # so the checkpoint's are left unrestored.
        model.optimizer = tf.keras.optimizers.Adam(learning_rate)
        restored = model.load_weights(model_file_name)
        # Every weight the model has must come from the checkpoint; the optimizer's slots stay
        # behind on purpose (expect_partial: no warning about each of them).
        restored.assert_existing_objects_matched().expect_partial()
        model.run_eagerly = False
        if predict_data_example:
            model.run_inference(predict_data_example)
        return model


class FastLoadDIET(_EagerBuildMixin, DIET):
    """DIET with the eager build at load time."""


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class FastLoadDIETClassifier(DIETClassifier):
    """DIETClassifier whose model loads without tracing the training step."""

    @staticmethod
    def model_class() -> type[DIET]:
        return FastLoadDIET
