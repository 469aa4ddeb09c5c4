import type { ComponentChildren } from "preact";

/** A modal confirmation: says exactly what will happen; nothing happens until Confirm. */
export function Confirm(props: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <div class="modal-back" role="presentation">
      <div class="modal" role="dialog" aria-modal="true" aria-label={props.title}>
        <h3>{props.title}</h3>
        <div class="modal-body">{props.children}</div>
        <div class="row end">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="button" class={props.danger ? "danger" : "primary"} onClick={props.onConfirm}>
            {props.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}

export function Card(props: { label: string; value: ComponentChildren; hint?: string; testid?: string }) {
  return (
    <div class="card" data-testid={props.testid}>
      <div class="card-label">{props.label}</div>
      <div class="card-value">{props.value}</div>
      {props.hint ? <div class="card-hint">{props.hint}</div> : null}
    </div>
  );
}

export function ErrorLine(props: { error: string | undefined }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}
