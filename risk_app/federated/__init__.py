"""Federated fine-tuning on Flower: lenders train one risk model together without sharing a row.

Layers, lowest first (each imports only those above it in this list):

* `config`     — `FederatedConfig` (rounds, fraction per round, local epochs, min lenders,
                 FedAvg/FedProx, SecAgg+, DP) and `Partition` (how a simulation cuts lenders);
* `tensors`    — the trainable tensors that travel, and the check every update must pass;
* `join`       — the consortium's terms and the sentence naming a lender's difference;
* `partition`  — one data set cut into N lenders (spec column or Dirichlet label skew);
* `proximal`   — FedProx's term as a method regularizer;
* `lender`     — a lender's folder and its Flower client (the product's trainer inside);
* `privacy`    — ε spent (opacus' RDP accountant) and the lender-side Flower mods;
* `strategy`   — Flower's FedAvg / FedProx (+ DP wrapper) inside the consortium's guard;
* `server`     — the ServerApp body: join, rounds, checkpoint/resume, reports;
* `simulation` — N virtual lenders in Flower's Simulation Engine;
* `product`    — the consortium's model packaged, evaluated and registered like any other;
* `apps`       — the ServerApp / ClientApp for Flower's Deployment Engine;
* `deployment` — SuperLink / SuperNode commands, and all of it on loopback (`LocalConsortium`).

See docs/federated.md.
"""
