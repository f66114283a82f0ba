import * as vscode from 'vscode';

export interface AskOptions {
  title: string;
  step?: number;
  totalSteps?: number;
  prompt: string;
  value?: string;
  placeholder?: string;
  password?: boolean;
  /** Returns an error message, or undefined when the value is acceptable. Runs as the user types. */
  validate?: (value: string) => string | undefined;
}

/** One step of a multi-step input: resolves with the value, or undefined when the user cancels. */
export function ask(o: AskOptions): Promise<string | undefined> {
  return new Promise((resolve) => {
    const box = vscode.window.createInputBox();
    box.title = o.title;
    box.step = o.step;
    box.totalSteps = o.totalSteps;
    box.prompt = o.prompt;
    box.value = o.value ?? '';
    box.placeholder = o.placeholder;
    box.password = o.password ?? false;
    box.ignoreFocusOut = true;
    const check = (v: string): string | undefined => o.validate?.(v);
    box.validationMessage = o.value ? check(o.value) : undefined;
    let done = false;
    box.onDidChangeValue((v) => (box.validationMessage = check(v)));
    box.onDidAccept(() => {
      const message = check(box.value);
      if (message) {
        box.validationMessage = message;
        return;
      }
      done = true;
      resolve(box.value);
      box.hide();
    });
    box.onDidHide(() => {
      if (!done) resolve(undefined);
      box.dispose();
    });
    box.show();
  });
}
